/** Web authorization, wechat-protocol.md §1 and §10 item 4, over real HTTP. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRET, startSandbox, testApp, type Running } from './test-kit.ts';

let r: Running;
beforeAll(async () => {
  r = await startSandbox();
});
afterAll(() => r.stop());

const CALLBACK = 'https://bridge.example/wechat/oauth/callback';

function appWith(over: Parameters<typeof testApp>[0] = {}) {
  const app = testApp({ openPlatformId: 'open-1', ...over });
  r.sandbox.registerApp(app);
  return app;
}

function authorizeUrl(params: Array<[string, string]>): string {
  const qs = params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  return `${r.base}/connect/oauth2/authorize?${qs}#wechat_redirect`;
}

const standard = (appid: string, scope = 'snsapi_userinfo', redirect = CALLBACK, state = 'abc123'): Array<[string, string]> => [
  ['appid', appid],
  ['redirect_uri', redirect],
  ['response_type', 'code'],
  ['scope', scope],
  ['state', state],
];

async function page(url: string): Promise<{ status: number; html: string; cookie: string }> {
  const res = await fetch(url);
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  return { status: res.status, html: await res.text(), cookie };
}

function codeFor(appid: string, userId: string, scope = 'snsapi_userinfo'): string {
  const out = r.sandbox.authorize({ appid, redirect_uri: CALLBACK, scope, state: 's1', userId });
  return new URL(out.location).searchParams.get('code') ?? '';
}

const exchange = (appid: string, code: string, secret = SECRET) =>
  r.get('/sns/oauth2/access_token', { appid, secret, code, grant_type: 'authorization_code' });

describe('authorize page (§1.1–§1.3)', () => {
  it('When the link is well formed, then the page lists the users and asks for consent with CSP and no inline script', async () => {
    const app = appWith();
    r.sandbox.createUser({ nickname: '张三' });
    const res = await fetch(authorizeUrl(standard(app.appId)));
    const html = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(html).toContain('张三');
    expect(html).toContain('允许 / Allow');
    expect(html).not.toMatch(/<script>|\sstyle=|\son[a-z]+=/i);
  });

  it('When parameters come out of order, then "该链接无法访问"', async () => {
    const app = appWith();
    const params = standard(app.appId);
    const swapped = [params[1], params[0], ...params.slice(2)] as Array<[string, string]>;
    expect((await page(authorizeUrl(swapped))).html).toContain('该链接无法访问');
    expect((await page(authorizeUrl([...params, ['forcePopup', 'true'], ['connect_redirect', '1']]))).html).toContain('允许 / Allow');
  });

  it('When the redirect domain differs, has a port, or is a sub-domain, then error 10003', async () => {
    const app = appWith();
    for (const uri of ['https://evil.example/cb', 'https://bridge.example:8443/cb', 'https://www.bridge.example/cb', 'http://bridge.example:80/cb']) {
      const { html } = await page(authorizeUrl(standard(app.appId, 'snsapi_base', uri)));
      expect(html, uri).toContain('10003');
    }
  });

  it('When the app allows ports (loopback development), then a port is accepted', async () => {
    const app = appWith({ redirectDomains: ['localhost'], allowPortsInRedirect: true });
    const { html } = await page(authorizeUrl(standard(app.appId, 'snsapi_base', 'http://localhost:3000/wechat/oauth/callback')));
    expect(html).toContain('继续 / Continue');
  });

  it('When the scope is unknown or the account unverified, then error 10005', async () => {
    const app = appWith();
    expect((await page(authorizeUrl(standard(app.appId, 'snsapi_login')))).html).toContain('10005');
    const unverified = appWith({ verified: false });
    expect((await page(authorizeUrl(standard(unverified.appId, 'snsapi_base')))).html).toContain('10005');
  });

  it('When state is longer than 128 bytes or has other characters, then the link is refused', async () => {
    const app = appWith();
    expect((await page(authorizeUrl(standard(app.appId, 'snsapi_base', CALLBACK, 'a'.repeat(129))))).html).toContain('该链接无法访问');
    expect((await page(authorizeUrl(standard(app.appId, 'snsapi_base', CALLBACK, 'a-b')))).html).toContain('该链接无法访问');
    expect((await page(authorizeUrl(standard(app.appId, 'snsapi_base', CALLBACK, 'a'.repeat(128))))).html).toContain('继续');
  });

  it('When the person allows on the page, then the browser is sent to redirect_uri with code and state', async () => {
    const app = appWith();
    const user = r.sandbox.createUser({ nickname: '李四' });
    const { html, cookie } = await page(authorizeUrl(standard(app.appId, 'snsapi_userinfo', `${CALLBACK}?x=1`)));
    const csrf = /name="_csrf" value="([0-9a-f]{32})"/.exec(html)?.[1] ?? '';
    const form = new URLSearchParams([...standard(app.appId, 'snsapi_userinfo', `${CALLBACK}?x=1`), ['_csrf', csrf], ['user', user.userId], ['decision', 'allow']]);
    const res = await fetch(`${r.base}/connect/oauth2/authorize/confirm`, { method: 'POST', body: form, headers: { cookie }, redirect: 'manual' });
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location') ?? '');
    expect(`${location.origin}${location.pathname}`).toBe(CALLBACK);
    expect(location.searchParams.get('x')).toBe('1');
    expect(location.searchParams.get('code')).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(location.searchParams.get('state')).toBe('abc123');
  });

  it('When the form lacks the CSRF token, then it is refused with 403', async () => {
    const app = appWith();
    const form = new URLSearchParams([...standard(app.appId), ['user', 'u1'], ['decision', 'allow']]);
    const res = await fetch(`${r.base}/connect/oauth2/authorize/confirm`, { method: 'POST', body: form, redirect: 'manual' });
    expect(res.status).toBe(403);
  });

  it('When the person declines, then the redirect carries only state (§1.4)', () => {
    const app = appWith();
    const user = r.sandbox.createUser();
    const out = r.sandbox.authorize({ appid: app.appId, redirect_uri: CALLBACK, scope: 'snsapi_userinfo', state: 'xyz', userId: user.userId, decision: 'decline' });
    expect(out.location).toBe(`${CALLBACK}?state=xyz`);
  });

  it('When double redirect is on, then the page requests the callback twice with the same code', async () => {
    const app = appWith({ doubleRedirect: true });
    const user = r.sandbox.createUser();
    const out = r.sandbox.authorize({ appid: app.appId, redirect_uri: CALLBACK, scope: 'snsapi_base', state: 's', userId: user.userId });
    expect(out.redirects).toEqual([out.location, out.location]);

    const { html, cookie } = await page(authorizeUrl(standard(app.appId, 'snsapi_base')));
    const csrf = /name="_csrf" value="([0-9a-f]{32})"/.exec(html)?.[1] ?? '';
    expect(html).toMatch(/name="double_redirect" checked/);
    const form = new URLSearchParams([...standard(app.appId, 'snsapi_base'), ['_csrf', csrf], ['user', user.userId], ['double_redirect', 'on'], ['decision', 'allow']]);
    const res = await fetch(`${r.base}/connect/oauth2/authorize/confirm`, { method: 'POST', body: form, headers: { cookie }, redirect: 'manual' });
    const body = await res.text();
    expect(res.status).toBe(200);
    expect(body).toMatch(/id="sbx-double" data-url="https:\/\/bridge\.example\/wechat\/oauth\/callback\?code=[A-Za-z0-9]{32}&amp;state=abc123"/);
    expect(body).toContain('/static/double-redirect.js');
    const js = await fetch(`${r.base}/static/double-redirect.js`);
    expect(js.headers.get('content-type')).toContain('javascript');
  });

  it('When the JSON control variant is used, then it runs the same checks and issues a code', async () => {
    const app = appWith();
    const user = r.sandbox.createUser();
    const ok = await r.post('/control/authorize', { appid: app.appId, redirect_uri: CALLBACK, scope: 'snsapi_base', state: 'st', userId: user.userId });
    expect(String(ok.location)).toMatch(/\?code=[A-Za-z0-9]{32}&state=st$/);
    const bad = await fetch(`${r.base}/control/authorize`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ appid: app.appId, redirect_uri: 'https://evil.example/', scope: 'snsapi_base', userId: user.userId }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: 'authorize_rejected', wechat_code: 10003 });
  });
});

describe('sns/oauth2/access_token (§1.4, §1.5)', () => {
  it('When a userinfo code is exchanged, then openid, unionid and scope come back, and a reuse is 40163', async () => {
    const app = appWith();
    const user = r.sandbox.createUser({ hasUnionId: true });
    const code = codeFor(app.appId, user.userId);
    const body = await exchange(app.appId, code);
    expect(body).toEqual({
      access_token: expect.any(String),
      expires_in: 7200,
      refresh_token: expect.any(String),
      openid: r.sandbox.openid(app.appId, user.userId),
      scope: 'snsapi_userinfo',
      unionid: expect.stringMatching(/^o[A-Za-z0-9_-]{27}$/),
    });
    expect(String(body.openid)).toMatch(/^o[A-Za-z0-9_-]{27}$/);
    expect((await exchange(app.appId, code)).errcode).toBe(40163);
  });

  it('When the code is unknown, for another app, or older than 5 minutes, then 40029', async () => {
    const app = appWith();
    const other = appWith();
    const user = r.sandbox.createUser();
    expect((await exchange(app.appId, 'nope')).errcode).toBe(40029);
    expect((await exchange(other.appId, codeFor(app.appId, user.userId))).errcode).toBe(40029);
    const code = codeFor(app.appId, user.userId);
    r.clock.advance(300_000);
    expect((await exchange(app.appId, code)).errcode).toBe(40029);
  });

  it('When the secret or grant is wrong, then 40125/40001, 40002 and 41008', async () => {
    const app = appWith();
    const user = r.sandbox.createUser();
    const code = codeFor(app.appId, user.userId);
    expect((await exchange(app.appId, code, 'short')).errcode).toBe(40125);
    expect((await exchange(app.appId, code, 'e'.repeat(32))).errcode).toBe(40001);
    expect((await r.get('/sns/oauth2/access_token', { appid: app.appId, secret: SECRET, code, grant_type: 'x' })).errcode).toBe(40002);
    expect((await r.get('/sns/oauth2/access_token', { appid: app.appId, secret: SECRET, grant_type: 'authorization_code' })).errcode).toBe(41008);
    expect((await exchange(app.appId, code)).openid).toEqual(expect.any(String)); // failed attempts did not spend it
  });

  it('When the scope is base, then unionid is absent unless the app opts in (§13.4)', async () => {
    const app = appWith();
    const user = r.sandbox.createUser({ hasUnionId: true });
    expect(await exchange(app.appId, codeFor(app.appId, user.userId, 'snsapi_base'))).not.toHaveProperty('unionid');
    r.sandbox.updateApp(app.appId, { unionIdInBaseScope: true });
    expect(await exchange(app.appId, codeFor(app.appId, user.userId, 'snsapi_base'))).toHaveProperty('unionid');
    const noUnion = r.sandbox.createUser({ hasUnionId: false });
    expect(await exchange(app.appId, codeFor(app.appId, noUnion.userId))).not.toHaveProperty('unionid');
  });

  it('When a snapshot user authorizes with userinfo, then is_snapshotuser is 1 with virtual ids and userinfo is 48001', async () => {
    const app = appWith();
    const user = r.sandbox.createUser({ snapshot: true, hasUnionId: true });
    const body = await exchange(app.appId, codeFor(app.appId, user.userId));
    expect(body.is_snapshotuser).toBe(1);
    expect(body.openid).not.toBe(r.sandbox.openid(app.appId, user.userId));
    expect(body.unionid).not.toBe(r.sandbox.describeUser(user.userId).accounts.find((a) => a.appId === app.appId)?.unionid);
    const info = await r.get('/sns/userinfo', { access_token: String(body.access_token), openid: String(body.openid), lang: 'zh_CN' });
    expect(info.errcode).toBe(48001);
    const normal = await exchange(app.appId, codeFor(app.appId, r.sandbox.createUser().userId));
    expect(normal).not.toHaveProperty('is_snapshotuser');
  });
});

describe('refresh, userinfo and auth (§1.6, §1.7, §1.9)', () => {
  it('When userinfo is fetched with a userinfo token, then sex is 0, the region is empty and privilege is []', async () => {
    const app = appWith();
    const user = r.sandbox.createUser({ nickname: '王五', avatarUrl: 'https://thirdwx.qlogo.cn/mmopen/x/132', hasUnionId: true });
    const t = await exchange(app.appId, codeFor(app.appId, user.userId));
    const info = await r.get('/sns/userinfo', { access_token: String(t.access_token), openid: String(t.openid), lang: 'zh_CN' });
    expect(info).toEqual({
      openid: t.openid,
      nickname: '王五',
      sex: 0,
      province: '',
      city: '',
      country: '',
      headimgurl: 'https://thirdwx.qlogo.cn/mmopen/x/132',
      privilege: [],
      unionid: t.unionid,
    });
  });

  it('When a base-scope token asks for userinfo, then 48001; sns/auth says ok, 40003 for another openid, 42001 when expired', async () => {
    const app = appWith();
    const user = r.sandbox.createUser();
    const t = await exchange(app.appId, codeFor(app.appId, user.userId, 'snsapi_base'));
    const q = { access_token: String(t.access_token), openid: String(t.openid) };
    expect((await r.get('/sns/userinfo', q)).errcode).toBe(48001);
    expect(await r.get('/sns/auth', q)).toEqual({ errcode: 0, errmsg: 'ok' });
    expect((await r.get('/sns/auth', { ...q, openid: 'oOther' })).errcode).toBe(40003);
    r.clock.advance(7200_000);
    expect((await r.get('/sns/auth', q)).errcode).toBe(42001);
  });

  it('When refreshed, then a live token is kept, an expired one replaced, and after 30 days 42002', async () => {
    const app = appWith();
    const user = r.sandbox.createUser();
    const t = await exchange(app.appId, codeFor(app.appId, user.userId));
    const refresh = (token = String(t.refresh_token)) => r.get('/sns/oauth2/refresh_token', { appid: app.appId, grant_type: 'refresh_token', refresh_token: token });
    const kept = await refresh();
    expect(kept).toMatchObject({ access_token: t.access_token, refresh_token: t.refresh_token, openid: t.openid, scope: 'snsapi_userinfo', expires_in: 7200 });
    r.clock.advance(7200_000);
    const replaced = await refresh();
    expect(replaced.access_token).not.toBe(t.access_token);
    expect((await r.get('/sns/auth', { access_token: String(replaced.access_token), openid: String(t.openid) })).errcode).toBe(0);
    expect((await refresh('bogus')).errcode).toBe(40030);
    r.clock.advance(30 * 86_400_000);
    expect((await refresh()).errcode).toBe(42002);
  });
});
