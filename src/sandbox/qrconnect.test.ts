/** Website QR login (wechat-protocol.md §1.10, §1.4), over real HTTP against the sandbox. */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRET, startSandbox, testApp, type Running } from './test-kit.ts';

let r: Running;
beforeAll(async () => {
  r = await startSandbox();
});
afterAll(() => r.stop());

const CALLBACK = 'https://bridge.example/wechat/oauth/callback?oa=demo&app=web';
const WEB_SECRET = 'fedcba9876543210fedcba9876543210';

/** An official account and a website app bound to the same Open Platform account. */
function pair() {
  const openPlatformId = `open-${randomBytes(4).toString('hex')}`;
  const oa = testApp({ openPlatformId });
  r.sandbox.registerApp(oa);
  const web = r.sandbox.registerWebsiteApp({ appId: `wx${randomBytes(8).toString('hex')}`, appSecret: WEB_SECRET, name: '信用卡中心网站', redirectDomains: ['bridge.example'], openPlatformId });
  return { oa, web };
}

function qrUrl(params: Array<[string, string]>): string {
  return `${r.base}/connect/qrconnect?${params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}#wechat_redirect`;
}

const standard = (appid: string, over: Partial<Record<'redirect_uri' | 'scope' | 'state', string>> = {}): Array<[string, string]> => [
  ['appid', appid],
  ['redirect_uri', over.redirect_uri ?? CALLBACK],
  ['response_type', 'code'],
  ['scope', over.scope ?? 'snsapi_login'],
  ['state', over.state ?? 'st42'],
];

async function open(url: string): Promise<{ status: number; html: string; cookie: string; headers: Headers }> {
  const res = await fetch(url);
  return { status: res.status, html: await res.text(), cookie: res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; '), headers: res.headers };
}

const hidden = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(html)?.[1] ?? '';

const exchange = (appid: string, code: string, secret = WEB_SECRET) => r.get('/sns/oauth2/access_token', { appid, secret, code, grant_type: 'authorization_code' });

describe('connect/qrconnect page (§1.10)', () => {
  it('When the link is well formed, then the page shows a QR and the phone panel, with CSP and no inline script', async () => {
    const { web } = pair();
    r.sandbox.createUser({ nickname: '李四' });
    const p = await open(qrUrl(standard(web.appId)));
    expect(p.status).toBe(200);
    expect(p.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(p.html).toContain('src="data:image/png;base64,');
    expect(p.html).toContain('信用卡中心网站');
    expect(p.html).toContain('李四');
    expect(p.html).toContain('/static/qrconnect.js');
    expect(p.html).not.toMatch(/<script>|\sstyle=|\son[a-z]+=/i);
  });

  it.each([
    ['an official account appid', (a: { oa: { appId: string } }) => standard(a.oa.appId), 'AppID'],
    ['an unknown appid', () => standard('wx0000000000000000'), 'AppID'],
    ['scope snsapi_userinfo', (a: { web: { appId: string } }) => standard(a.web.appId, { scope: 'snsapi_userinfo' }), 'Scope'],
    ['another callback domain', (a: { web: { appId: string } }) => standard(a.web.appId, { redirect_uri: 'https://evil.example/cb' }), 'redirect_uri'],
    ['a port in the callback', (a: { web: { appId: string } }) => standard(a.web.appId, { redirect_uri: 'https://bridge.example:8443/cb' }), 'redirect_uri'],
    ['a state with a dash', (a: { web: { appId: string } }) => standard(a.web.appId, { state: 'a-b' }), '该链接无法访问'],
    ['parameters out of order', (a: { web: { appId: string } }) => [...standard(a.web.appId)].reverse(), '该链接无法访问'],
    ['a repeated parameter', (a: { web: { appId: string } }) => [...standard(a.web.appId), ['scope', 'snsapi_login']] as Array<[string, string]>, '该链接无法访问'],
  ])('When the link has %s, then WeChat\'s error page shows and no QR', async (_l, params, message) => {
    const p = await open(qrUrl(params(pair())));
    expect(p.html).toContain(message);
    expect(p.html).not.toContain('data:image/png');
  });

  it('When the phone panel confirms, then the browser goes to redirect_uri with a code and the state, and the page\'s poll says so', async () => {
    const { web } = pair();
    const user = r.sandbox.createUser({ nickname: '王五' });
    const p = await open(qrUrl(standard(web.appId)));
    const uuid = hidden(p.html, 'uuid');
    const poll = /data-poll="([^"]+)"/.exec(p.html)![1]!.replace(/&amp;/g, '&');
    expect(await (await fetch(`${r.base}${poll}`)).json()).toEqual({ status: 'waiting' });
    const res = await fetch(`${r.base}/connect/qrconnect/confirm`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: p.cookie },
      body: new URLSearchParams({ _csrf: hidden(p.html, '_csrf'), uuid, user: user.userId, decision: 'allow' }),
    });
    expect(res.status).toBe(302);
    const loc = new URL(res.headers.get('location')!);
    expect(`${loc.origin}${loc.pathname}`).toBe('https://bridge.example/wechat/oauth/callback');
    expect(loc.searchParams.get('oa')).toBe('demo');
    expect(loc.searchParams.get('app')).toBe('web');
    expect(loc.searchParams.get('state')).toBe('st42');
    expect(loc.searchParams.get('code')).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(await (await fetch(`${r.base}${poll}`)).json()).toEqual({ status: 'confirmed', location: loc.href });
  });

  it('When the QR is scanned on a phone and confirmed there, then the desktop page\'s poll hands over the callback URL', async () => {
    const { web } = pair();
    const user = r.sandbox.createUser({ nickname: '手机用户' });
    const desk = await open(qrUrl(standard(web.appId)));
    const scan = /href="([^"]+\/connect\/confirm\?uuid=[^"]+)"/.exec(desk.html)![1]!;
    const phone = await open(scan);
    expect(phone.html).toContain('确认登录 / Confirm login');
    const res = await fetch(`${r.base}/connect/confirm`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: phone.cookie },
      body: new URLSearchParams({ _csrf: hidden(phone.html, '_csrf'), uuid: hidden(phone.html, 'uuid'), user: user.userId, decision: 'allow' }),
    });
    expect(await res.text()).toContain('已确认登录');
    const poll = await (await fetch(`${r.base}/connect/qrconnect/poll?uuid=${hidden(desk.html, 'uuid')}`)).json() as { status: string; location: string };
    expect(poll.status).toBe('confirmed');
    expect(new URL(poll.location).searchParams.get('code')).toBeTruthy();
    // A QR answers once.
    expect((await open(scan)).status).toBe(409);
  });

  it('When the user refuses on the phone, then the browser comes back with state only (§1.4, §13.3)', () => {
    const { web } = pair();
    const user = r.sandbox.createUser();
    const out = r.sandbox.qrConnect({ appid: web.appId, redirect_uri: CALLBACK, state: 'st42', userId: user.userId, decision: 'decline' });
    const loc = new URL(out.location);
    expect(loc.searchParams.get('state')).toBe('st42');
    expect(loc.searchParams.has('code')).toBe(false);
    expect(out.code).toBeUndefined();
  });

  it('When the QR waits past its lifetime, then the poll says expired and scanning is refused', async () => {
    const { web } = pair();
    const p = await open(qrUrl(standard(web.appId)));
    const uuid = hidden(p.html, 'uuid');
    r.clock.advance(r.sandbox.state.limits.qrLoginTtlSec * 1000);
    expect(await (await fetch(`${r.base}/connect/qrconnect/poll?uuid=${uuid}`)).json()).toEqual({ status: 'expired' });
    expect((await open(`${r.base}/connect/confirm?uuid=${uuid}`)).status).toBe(404);
  });
});

describe('code exchange with the website app (§1.10, §1.5)', () => {
  it('When the code is exchanged with the website app\'s appid/secret, then its own openid and the shared unionid come back', async () => {
    const { oa, web } = pair();
    const user = r.sandbox.createUser({ nickname: '赵六' });
    const code = r.sandbox.qrConnect({ appid: web.appId, redirect_uri: CALLBACK, state: 's', userId: user.userId }).code!;
    const body = await exchange(web.appId, code);
    expect(body).toMatchObject({ expires_in: 7200, scope: 'snsapi_login' });
    // The official account sees the same person under another openid, the same unionid.
    const oaCode = new URL(r.sandbox.authorize({ appid: oa.appId, redirect_uri: 'https://bridge.example/cb', scope: 'snsapi_userinfo', state: 's', userId: user.userId }).location).searchParams.get('code')!;
    const oaBody = await r.get('/sns/oauth2/access_token', { appid: oa.appId, secret: SECRET, code: oaCode, grant_type: 'authorization_code' });
    expect(body.openid).not.toBe(oaBody.openid);
    expect(body.unionid).toBe(oaBody.unionid);
    expect(typeof body.unionid).toBe('string');
    // The token reads the profile (snsapi_login includes it) and refreshes with the website appid.
    const info = await r.get('/sns/userinfo', { access_token: String(body.access_token), openid: String(body.openid) });
    expect(info).toMatchObject({ openid: body.openid, nickname: '赵六', unionid: body.unionid });
    const refreshed = await r.get('/sns/oauth2/refresh_token', { appid: web.appId, grant_type: 'refresh_token', refresh_token: String(body.refresh_token) });
    expect(refreshed.openid).toBe(body.openid);
  });

  it('When the code is replayed, exchanged by another app, with a wrong secret or after 10 minutes, then WeChat\'s errcodes come back', async () => {
    const { oa, web } = pair();
    const user = r.sandbox.createUser();
    const code = () => r.sandbox.qrConnect({ appid: web.appId, redirect_uri: CALLBACK, state: 's', userId: user.userId }).code!;
    expect((await exchange(web.appId, code(), 'ffffffffffffffffffffffffffffffff')).errcode).toBe(40001);
    expect((await r.get('/sns/oauth2/access_token', { appid: oa.appId, secret: SECRET, code: code(), grant_type: 'authorization_code' })).errcode).toBe(40029);
    const once = code();
    expect((await exchange(web.appId, once)).openid).toBeTruthy();
    expect((await exchange(web.appId, once)).errcode).toBe(40163);
    const late = code();
    r.clock.advance(599_000);
    const stillOk = code();
    r.clock.advance(1_000);
    expect((await exchange(web.appId, late)).errcode).toBe(40029);
    expect((await exchange(web.appId, stillOk)).openid).toBeTruthy();
  });

  it('When a user has no unionid or the website app is not bound to an Open Platform account, then no unionid comes back', async () => {
    const web = r.sandbox.registerWebsiteApp({ appId: `wx${randomBytes(8).toString('hex')}`, appSecret: WEB_SECRET, redirectDomains: ['bridge.example'] });
    const user = r.sandbox.createUser();
    const body = await exchange(web.appId, r.sandbox.qrConnect({ appid: web.appId, redirect_uri: CALLBACK, state: 's', userId: user.userId }).code!);
    expect(body.openid).toBeTruthy();
    expect(body.unionid).toBeUndefined();
  });

  it('When a website app is registered over the control API with an official account\'s appid, then it is refused', async () => {
    const { oa } = pair();
    const res = await fetch(`${r.base}/control/website-apps`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ appId: oa.appId, appSecret: WEB_SECRET, redirectDomains: ['bridge.example'] }),
    });
    expect(res.status).toBe(409);
  });
});
