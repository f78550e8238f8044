/**
 * Compatible mode's clear text (issue 6; wechat-protocol.md §6.1: "Compatible (兼容): body
 * carries both the plaintext fields and `Encrypt`"). The user's own text travels in clear
 * beside `Encrypt`, so it may hold the string `<Encrypt>`; push-verify.ts used to refuse any
 * body with the tag twice, so such a user got 400s, and after WeChat's retries its
 * "该公众号暂时无法提供服务". A forged second Encrypt must still not be the one used.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { follower, startHarness, type Harness } from './harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

describe('compatible-mode bodies carry user text in clear', () => {
  it('When a user in compatible mode types the text "<Encrypt>", then the push is accepted and answered', async () => {
    const u = follower(h, 'compat');
    const r = await h.sandbox.act(u.appId, u.userId, { type: 'text', content: 'what is <Encrypt></Encrypt>?' });
    expect({ outcome: r.outcome, status: r.status, notice: r.userNotice }).toEqual({ outcome: 'reply', status: 200, notice: undefined });
  });
});
