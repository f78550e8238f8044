/**
 * WeChat's double redirect (SECURITY.md A10, T7: "every duplicate gets the same outcome as the
 * first") on a callback WITHOUT a code — the user declined the consent popup
 * (wechat-protocol.md §1.4, §13.3). The no-code path once just consumed the state, without the
 * single-flight record of the code path: the first copy got the outcome, every duplicate "link
 * expired" (400), and in the profile round the user, logged in by the first copy, ended on an
 * error page. Declined callbacks now go through the same single-flight, keyed by the state
 * (src/linking/login-flow.service.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { BOOT_TIMEOUT_MS, Browser, authorizeAt, newWeChatUser, startLinkingApp, startLogin } from './helpers.ts';

let app: TestApp;

beforeAll(async () => {
  ({ app } = await startLinkingApp());
}, BOOT_TIMEOUT_MS);
afterAll(async () => {
  await app.stop();
});

describe('double redirect of a declined-consent callback (T7)', () => {
  it('When the profile-round decline callback arrives twice at once, then both copies get the first outcome (a 302 to next with the session), not an error page', async () => {
    const b = new Browser(app.baseUrl);
    const { userId } = await newWeChatUser(app);
    const cb1 = new URL(await authorizeAt(app, await startLogin(b, 'card'), userId));
    const r1 = await b.get(cb1.pathname + cb1.search);
    expect(r1.location).toContain('scope=snsapi_userinfo');
    const cb2 = new URL(await authorizeAt(app, r1.location!, userId, 'decline'));
    expect(cb2.searchParams.get('code')).toBeNull();
    const copies = await Promise.all([b.get(cb2.pathname + cb2.search), b.get(cb2.pathname + cb2.search)]);
    const outcomes = copies.map((r) => `${r.status} ${r.location ?? ''}`).sort();
    // Before the fix: one copy "302 /link/card", the other "400" (链接已失效).
    expect(outcomes).toEqual(['302 /link/card', '302 /link/card']);
  }, 60_000);

  it('When a declined (base-round) callback arrives twice, then both copies show the same declined page', async () => {
    const b = new Browser(app.baseUrl);
    const { userId } = await newWeChatUser(app);
    const cb = new URL(await authorizeAt(app, await startLogin(b, 'power'), userId, 'decline'));
    const copies = await Promise.all([b.get(cb.pathname + cb.search), b.get(cb.pathname + cb.search)]);
    // Before the fix: one copy the declined page (200), the other the expired page (400).
    expect(copies.map((r) => r.status).sort()).toEqual([200, 200]);
  }, 60_000);
});
