/**
 * Merchant text in passive replies (issue 6, DESIGN.md "Intents"; wechat-protocol.md §5.6,
 * §5.7). What goes into a passive reply comes partly from merchants: an account's display
 * name (bindings API, verify API, binding codes) or an intents answer. A character XML cannot
 * carry (here BEL, U+0007, which both zod schemas accept) must not turn the reply into a 5xx:
 * WeChat retries, gets 5xx again and shows the user "该公众号暂时无法提供服务，请稍后再试".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { follower, linkUser, startHarness, type Harness } from './harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

describe('a merchant-supplied string in a passive reply', () => {
  it('When a linked account display holds a control character and the user asks "my accounts", then the user still gets a reply', async () => {
    const u = follower(h, 'safe');
    await linkUser(h, 'safe', u.openid, { id: 'acct-ctl-1', display: '**** 12\u000734' });
    const r = await h.sandbox.act(u.appId, u.userId, { type: 'text', content: '我的账户' });
    expect({ outcome: r.outcome, status: r.status, attempts: r.attempts, notice: r.userNotice }).toEqual({ outcome: 'reply', status: 200, attempts: 1, notice: undefined });
  });

  it('When the merchant intents answer holds a control character, then the user gets a reply (the answer cleaned, or "busy"), not WeChat\'s error notice', async () => {
    const u = follower(h, 'plain');
    // The fake merchant echoes the account id into its answer: "余额 <account>: ¥100.00".
    await linkUser(h, 'plain', u.openid, { id: 'acct-ctl-\u00072', display: '**** 2' });
    const r = await h.sandbox.act(u.appId, u.userId, { type: 'text', content: '余额' });
    expect({ outcome: r.outcome, status: r.status, notice: r.userNotice }).toEqual({ outcome: 'reply', status: 200, notice: undefined });
  });
});
