/** Account tokens, wechat-protocol.md §2 and §10 items 1–3, over real HTTP. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRET, startSandbox, testApp, type Running } from './test-kit.ts';

let r: Running;
beforeAll(async () => {
  r = await startSandbox();
});
afterAll(() => r.stop());

const tokenQuery = (appid: string, secret = SECRET) => ({ grant_type: 'client_credential', appid, secret });
const userInfoWith = (token: string) => r.get('/cgi-bin/user/info', { access_token: token, openid: 'oNobody' });

describe('cgi-bin/token (§2.1, §2.3)', () => {
  it('When a token is fetched, then the body has access_token and expires_in 7200 and no errcode', async () => {
    const app = testApp();
    r.sandbox.registerApp(app);
    const body = await r.get('/cgi-bin/token', tokenQuery(app.appId));
    expect(body).toEqual({ access_token: expect.stringMatching(/^[A-Za-z0-9_-]{100,}$/), expires_in: 7200 });
  });

  it('When a second token is minted, then the first works for 300 s and then answers 40001', async () => {
    const app = testApp();
    r.sandbox.registerApp(app);
    const first = String((await r.get('/cgi-bin/token', tokenQuery(app.appId))).access_token);
    const second = String((await r.get('/cgi-bin/token', tokenQuery(app.appId))).access_token);
    expect(second).not.toBe(first);
    // 40003 (unknown openid) proves the token itself was accepted.
    expect((await userInfoWith(first)).errcode).toBe(40003);
    r.clock.advance(299_000);
    expect((await userInfoWith(first)).errcode).toBe(40003);
    r.clock.advance(1_000);
    const stale = await userInfoWith(first);
    expect(stale.errcode).toBe(40001);
    expect(stale.errmsg).toMatch(/^invalid credential, access_token is invalid or not latest rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/);
    expect((await userInfoWith(second)).errcode).toBe(40003);
  });

  it('When a token outlives expires_in, then it answers 42001', async () => {
    const app = testApp();
    r.sandbox.registerApp(app);
    const token = String((await r.get('/cgi-bin/token', tokenQuery(app.appId))).access_token);
    r.clock.advance(7200_000);
    expect((await userInfoWith(token)).errcode).toBe(42001);
  });

  it('When the token is missing, unknown or malformed, then 41001, 40001 and 40014', async () => {
    expect((await r.get('/cgi-bin/user/info', { openid: 'x' })).errcode).toBe(41001);
    expect((await userInfoWith('A'.repeat(150))).errcode).toBe(40001);
    expect((await userInfoWith('not a token!')).errcode).toBe(40014);
  });

  it('When credentials are wrong, then 40013, 40001 (wrong secret) or 40125 (malformed secret), and 40002 for grant_type', async () => {
    const app = testApp();
    r.sandbox.registerApp(app);
    expect((await r.get('/cgi-bin/token', tokenQuery('wxunknown00000000'))).errcode).toBe(40013);
    expect((await r.get('/cgi-bin/token', tokenQuery(app.appId, 'f'.repeat(32)))).errcode).toBe(40001);
    expect((await r.get('/cgi-bin/token', tokenQuery(app.appId, 'nope'))).errcode).toBe(40125);
    expect((await r.get('/cgi-bin/token', { ...tokenQuery(app.appId), grant_type: 'password' })).errcode).toBe(40002);
    expect((await r.get('/cgi-bin/token', { grant_type: 'client_credential', appid: app.appId })).errcode).toBe(41004);
  });

  it('When the daily quota is used, then 45009 until midnight Beijing time', async () => {
    const app = testApp();
    r.sandbox.registerApp(app);
    r.sandbox.setLimits({ tokenDailyLimit: 2 });
    try {
      await r.get('/cgi-bin/token', tokenQuery(app.appId));
      await r.get('/cgi-bin/token', tokenQuery(app.appId));
      expect((await r.get('/cgi-bin/token', tokenQuery(app.appId))).errcode).toBe(45009);
      r.clock.advance(86_400_000);
      expect((await r.get('/cgi-bin/token', tokenQuery(app.appId))).access_token).toEqual(expect.any(String));
    } finally {
      r.sandbox.setLimits({ tokenDailyLimit: 2000 });
    }
  });

  it('When the caller IP is not whitelisted, then 40164 names the IP', async () => {
    const app = testApp({ ipWhitelist: ['10.0.0.1'] });
    r.sandbox.registerApp(app);
    const body = await r.get('/cgi-bin/token', tokenQuery(app.appId));
    expect(body.errcode).toBe(40164);
    expect(body.errmsg).toMatch(/^invalid ip 127\.0\.0\.1 ipv6 ::ffff:127\.0\.0\.1, not in whitelist rid: /);
    r.sandbox.updateApp(app.appId, { ipWhitelist: ['127.0.0.1'] });
    expect((await r.get('/cgi-bin/token', tokenQuery(app.appId))).access_token).toEqual(expect.any(String));
  });

  it('When every call is logged, then the calls log shows one token fetch per call with its appid', async () => {
    const app = testApp();
    r.sandbox.registerApp(app);
    await r.get('/cgi-bin/token', tokenQuery(app.appId));
    const calls = r.sandbox.calls('/cgi-bin/token').filter((c) => c.appId === app.appId);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ method: 'GET', errcode: 0 });
  });
});

describe('cgi-bin/stable_token (§2.2)', () => {
  const stable = (appid: string, force = false) => r.post('/cgi-bin/stable_token', { grant_type: 'client_credential', appid, secret: SECRET, force_refresh: force });

  it('When called with GET, then 43002 (and a POST to the GET-only cgi-bin/token is 43001)', async () => {
    expect((await r.get('/cgi-bin/stable_token')).errcode).toBe(43002);
    expect((await r.post('/cgi-bin/token', {})).errcode).toBe(43001);
  });

  it('When called repeatedly inside the validity, then the same token comes back with a shrinking expires_in', async () => {
    const app = testApp();
    r.sandbox.registerApp(app);
    const a = await stable(app.appId);
    r.clock.advance(60_000);
    const b = await stable(app.appId);
    expect(b.access_token).toBe(a.access_token);
    expect(a.expires_in).toBe(7200);
    expect(b.expires_in).toBe(7140);
  });

  it('When the token enters its last 300 s, then a new one is issued and the old one still works to its end', async () => {
    const app = testApp();
    r.sandbox.registerApp(app);
    const old = String((await stable(app.appId)).access_token);
    r.clock.advance(7200_000 - 300_000);
    const fresh = await stable(app.appId);
    expect(fresh.access_token).not.toBe(old);
    expect(fresh.expires_in).toBe(7200);
    expect((await userInfoWith(old)).errcode).toBe(40003);
    r.clock.advance(300_000);
    expect((await userInfoWith(old)).errcode).toBe(42001);
    expect((await userInfoWith(String(fresh.access_token))).errcode).toBe(40003);
  });

  it('When force_refresh is used, then the old token dies at once; within 30 s nothing refreshes; 20 per day', async () => {
    const app = testApp();
    r.sandbox.registerApp(app);
    const normal = String((await stable(app.appId)).access_token);
    const forced = String((await stable(app.appId, true)).access_token);
    expect(forced).not.toBe(normal);
    expect((await userInfoWith(normal)).errcode).toBe(40001);
    r.clock.advance(10_000);
    expect((await stable(app.appId, true)).access_token).toBe(forced);
    r.sandbox.setLimits({ stableForceDailyLimit: 2 });
    try {
      r.clock.advance(30_000);
      expect((await stable(app.appId, true)).access_token).not.toBe(forced);
      r.clock.advance(30_000);
      expect((await stable(app.appId, true)).errcode).toBe(45009);
    } finally {
      r.sandbox.setLimits({ stableForceDailyLimit: 20 });
    }
  });

  it('When both families are used, then neither invalidates the other', async () => {
    const app = testApp();
    r.sandbox.registerApp(app);
    const st = String((await stable(app.appId)).access_token);
    const classic = String((await r.get('/cgi-bin/token', { grant_type: 'client_credential', appid: app.appId, secret: SECRET })).access_token);
    await r.get('/cgi-bin/token', { grant_type: 'client_credential', appid: app.appId, secret: SECRET });
    r.clock.advance(301_000);
    expect((await userInfoWith(st)).errcode).toBe(40003);
    expect((await userInfoWith(classic)).errcode).toBe(40001);
    await stable(app.appId, true);
    expect((await userInfoWith(st)).errcode).toBe(40001);
  });

  it('When the body is empty or not JSON, then 44002 or 47001', async () => {
    expect(JSON.parse(await r.postRaw('/cgi-bin/stable_token', '')).errcode).toBe(44002);
    expect(JSON.parse(await r.postRaw('/cgi-bin/stable_token', '{oops')).errcode).toBe(47001);
  });
});
