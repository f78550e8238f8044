/**
 * Which push opens which customer-service window, and from when (issue 6, wechat-protocol.md
 * §3.2). "A tap on a `msgmenu` item counts as a *menu click* (3 msgs / 1 min), not as a user
 * message": WeChat pushes the tap as a text carrying `bizmsgmenuid`, the chosen item's id.
 * Either mistake (the 48-hour grant for a tap, or a window counted from our receipt of a
 * retried push) makes the bridge believe it may still send when WeChat answers 45015/45047.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { follower, startHarness, type Harness } from './harness.ts';
import { post, signedPush } from './pushes.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

describe('the customer-service window each push opens (§3.2)', () => {
  it('When the user taps a msgmenu item (text push with bizmsgmenuid), then only the menu-click window opens: 3 sends for 1 minute', async () => {
    const u = follower(h, 'plain');
    const fields = {
      ToUserName: h.accounts.plain.originalId,
      FromUserName: u.openid,
      CreateTime: Math.floor(Date.now() / 1000),
      MsgType: 'text',
      Content: '满意',
      MsgId: 24312345678901299n,
      bizmsgmenuid: '101',
    };
    const r = await post(signedPush(h, 'plain', fields));
    expect(r.status).toBe(200);
    await h.inbox.idle();
    const status = await h.inbox.csWindow.status(u.appId, u.openid);
    expect(status.open).toBe(true);
    expect(status.remaining).toBe(3);
    expect(status.expiresAt! - Date.now()).toBeLessThanOrEqual(60_000);
  });

  it('When a menu click reaches us 20 s after the user tapped (a retried push), then the 1-minute window is counted from the tap (CreateTime), not from our arrival', async () => {
    const u = follower(h, 'plain');
    const tappedAt = Math.floor(Date.now() / 1000) - 20;
    const fields = { ToUserName: h.accounts.plain.originalId, FromUserName: u.openid, CreateTime: tappedAt, MsgType: 'event', Event: 'CLICK', EventKey: 'HELP' };
    const r = await post(signedPush(h, 'plain', fields, { timestamp: String(tappedAt) }));
    expect(r.status).toBe(200);
    await h.inbox.idle();
    const status = await h.inbox.csWindow.status(u.appId, u.openid);
    expect(status.open).toBe(true);
    // WeChat closes this window at tappedAt + 60 s; a send after that gets 45015.
    expect(status.expiresAt!).toBeLessThanOrEqual(tappedAt * 1000 + 60_000 + 999);
  });
});
