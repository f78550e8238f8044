/**
 * WeChat web authorization for end users, through the real app and the sandbox over HTTP
 * (issue 4 "Web authorization"; wechat-protocol.md §1; SECURITY.md A1, A10, D5).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_ACCOUNT } from '../../src/config/demo.ts';
import type { LinkingFeature } from '../../src/linking/index.ts';
import { keyspace } from '../../src/store/keyspace.ts';
import type { TestApp } from '../helpers/app.ts';
import { BOOT_TIMEOUT_MS, startLinkingApp, authorizeAt, Browser, control, loginAs, newWeChatUser, startLogin } from './helpers.ts';

let app: TestApp;
let linking: LinkingFeature;
const appId = DEMO_ACCOUNT.appId;

beforeAll(async () => {
  ({ app, linking } = await startLinkingApp());
}, BOOT_TIMEOUT_MS);
afterAll(async () => {
  await app.stop();
});

const stateOf = (authorizeUrl: string) => new URL(authorizeUrl.replace('#wechat_redirect', '')).searchParams.get('state')!;
const exchanges = async () => (await control<unknown[]>(app, '/calls?path=/sns/oauth2/access_token')).length;
const openidOf = async (userId: string) => (await control<{ accounts: { openid: string }[] }>(app, `/users/${userId}`)).accounts[0]!.openid;
const identityCount = async (openid: string) =>
  Number((await app.deps.db.query<{ n: number }>('SELECT count(*)::int AS n FROM identities WHERE openid = $1', [openid])).rows[0]!.n);
const sessionCookie = (b: Browser) => b.jar.get('wxb_sess');

describe('login: the happy paths', () => {
  it('When a WeChat user logs in for a base-profile merchant, then one silent round sets a session and 302s to next', async () => {
    const b = new Browser(app.baseUrl);
    const { userId } = await newWeChatUser(app);
    const authorize = await startLogin(b, 'power', '/link/power?next=%2Fdone');
    expect(new URL(authorize.replace('#wechat_redirect', '')).searchParams.get('scope')).toBe('snsapi_base');
    expect(authorize).toMatch(/#wechat_redirect$/);
    const cb = new URL(await authorizeAt(app, authorize, userId));
    expect(cb.pathname).toBe('/wechat/oauth/callback');
    expect(cb.searchParams.get('oa')).toBe('demo');
    const r = await b.get(cb.pathname + cb.search);
    expect(r.status).toBe(302);
    expect(r.location).toBe('/link/power?next=%2Fdone');
    expect(sessionCookie(b)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const page = await b.follow(r);
    expect(page.status).toBe(200);
    expect(page.text).toContain('我的绑定账户');
    expect(await identityCount(await openidOf(userId))).toBe(1);
  });

  it('When the merchant wants a profile, then snsapi_base comes first, then snsapi_userinfo, and only the granted profile is stored', async () => {
    const b = new Browser(app.baseUrl);
    const { userId } = await newWeChatUser(app, { nickname: '小明' });
    const first = await startLogin(b, 'card');
    expect(first).toContain('scope=snsapi_base');
    const cb1 = new URL(await authorizeAt(app, first, userId));
    const r1 = await b.get(cb1.pathname + cb1.search);
    expect(r1.status).toBe(302);
    expect(r1.location).toContain('scope=snsapi_userinfo');
    const openid = await openidOf(userId);
    const before = await linking.service.findIdentity(appId, openid);
    expect(before?.nickname).toBeNull(); // base scope: nothing of the profile yet
    const cb2 = new URL(await authorizeAt(app, r1.location!, userId));
    const r2 = await b.get(cb2.pathname + cb2.search);
    expect(r2.location).toBe('/link/card');
    expect((await linking.service.findIdentity(appId, openid))?.nickname).toBe('小明');
    // A second login needs no profile round.
    const again = new Browser(app.baseUrl);
    const r3 = await loginAs(app, again, 'card', userId);
    expect(r3.location).toBe('/link/card');
    expect(await identityCount(openid)).toBe(1);
  });

  it('When the user declines only the profile round, then the base login stands (no profile, a session)', async () => {
    const b = new Browser(app.baseUrl);
    const { userId } = await newWeChatUser(app);
    const first = await startLogin(b, 'card');
    const cb1 = new URL(await authorizeAt(app, first, userId));
    const r1 = await b.get(cb1.pathname + cb1.search);
    const cb2 = new URL(await authorizeAt(app, r1.location!, userId, 'decline'));
    expect(cb2.searchParams.get('code')).toBeNull();
    const r2 = await b.get(cb2.pathname + cb2.search);
    expect(r2.status).toBe(302);
    expect(sessionCookie(b)).toBeDefined();
  });

  it('When a session for the account exists, then /wechat/login goes straight to next without WeChat', async () => {
    const b = new Browser(app.baseUrl);
    const { userId } = await newWeChatUser(app);
    await loginAs(app, b, 'power', userId);
    const r = await b.get('/wechat/login?merchant=power&next=%2Flink%2Fpower');
    expect(r.status).toBe(302);
    expect(r.location).toBe('/link/power');
  });

  it('When the authorization server asks for a new authentication (fresh=1: prompt=login, max_age), then WeChat is asked again despite the session', async () => {
    const b = new Browser(app.baseUrl);
    const { userId } = await newWeChatUser(app);
    await loginAs(app, b, 'power', userId);
    const before = sessionCookie(b);
    const r = await b.get('/wechat/login?merchant=power&next=%2Flink%2Fpower&fresh=1');
    expect(r.status).toBe(302);
    expect(r.location).toContain('/connect/oauth2/authorize?');
    const cb = new URL(await authorizeAt(app, r.location!, userId));
    const done = await b.get(cb.pathname + cb.search);
    expect(done.location).toBe('/link/power');
    expect(sessionCookie(b)).not.toBe(before);
  });

  it('When identities of one person appear on two accounts with one unionid, then they share a person id and keep their own keys', async () => {
    const a = await linking.service.recordInteraction({ appId: 'wxaaaaaaaaaaaaaaaa', openid: 'o-first', unionid: 'u-shared' });
    const b = await linking.service.upsertFromLogin({ appId, openid: 'o-second', unionid: 'u-shared' });
    const late = await linking.service.upsertFromLogin({ appId: 'wxbbbbbbbbbbbbbbbb', openid: 'o-third' });
    const joined = await linking.service.upsertFromLogin({ appId: 'wxbbbbbbbbbbbbbbbb', openid: 'o-third', unionid: 'u-shared' });
    expect(b.personId).toBe(a.personId);
    expect(joined.id).toBe(late.id); // never re-keyed
    expect(joined.personId).toBe(a.personId);
    // A unionid once stored is never overwritten.
    const again = await linking.service.upsertFromLogin({ appId, openid: 'o-second', unionid: 'u-other' });
    expect(again.unionid).toBe('u-shared');
  });
});

describe('login: every failure has its own page', () => {
  it('When the user declines consent, then a declined page (zh-CN, and English by Accept-Language) offers to start again', async () => {
    const b = new Browser(app.baseUrl);
    const { userId } = await newWeChatUser(app);
    const cb = new URL(await authorizeAt(app, await startLogin(b, 'power'), userId, 'decline'));
    const zh = await b.get(cb.pathname + cb.search);
    expect(zh.status).toBe(200);
    expect(zh.text).toContain('你取消了授权');
    expect(zh.text).toContain('/wechat/login?merchant=power');
    expect(sessionCookie(b)).toBeUndefined();
    const en = new Browser(app.baseUrl);
    const cbEn = new URL(await authorizeAt(app, await startLogin(en, 'power'), userId, 'decline'));
    const page = await en.request(cbEn.pathname + cbEn.search, { headers: { 'accept-language': 'en-US,en;q=0.9' } });
    expect(page.text).toContain('You cancelled the authorization');
  });

  it('When a state is unknown, tampered or malformed, then the expired page shows and nothing is exchanged', async () => {
    const b = new Browser(app.baseUrl);
    const before = await exchanges();
    for (const q of ['oa=demo&code=abc&state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'oa=demo&code=abc&state=%3Cscript%3E', 'oa=demo&code=abc', 'oa=nope&code=abc&state=abc', 'oa=demo&code=a&code=b&state=x']) {
      const r = await b.get(`/wechat/oauth/callback?${q}`);
      expect(r.status).toBe(400);
      expect(r.text).toContain('链接已失效');
      expect(r.text).not.toContain('<script>');
    }
    expect(await exchanges()).toBe(before);
  });

  it('When a used state comes back with a fresh code, then it is refused and the fresh code is never exchanged (replay)', async () => {
    const b = new Browser(app.baseUrl);
    const { userId } = await newWeChatUser(app);
    const authorize = await startLogin(b, 'power');
    const cb = new URL(await authorizeAt(app, authorize, userId));
    expect((await b.get(cb.pathname + cb.search)).status).toBe(302);
    const fresh = new URL(await authorizeAt(app, authorize, userId)); // same state, a new code
    const before = await exchanges();
    const r = await b.get(fresh.pathname + fresh.search);
    expect(r.status).toBe(400);
    expect(r.text).toContain('链接已失效');
    expect(await exchanges()).toBe(before);
  });

  it('When the callback arrives in another browser, then it is refused and that browser gets no session (RFC 9700 §4.7)', async () => {
    const victim = new Browser(app.baseUrl);
    const attacker = new Browser(app.baseUrl);
    const { userId } = await newWeChatUser(app);
    const cb = new URL(await authorizeAt(app, await startLogin(victim, 'power'), userId));
    const r = await attacker.get(cb.pathname + cb.search);
    expect(r.status).toBe(400);
    expect(r.text).toContain('请在同一个浏览器中完成');
    expect(sessionCookie(attacker)).toBeUndefined();
    // The replay of the same URL in the attacker's browser gets the same refusal, not the victim's outcome.
    expect((await attacker.get(cb.pathname + cb.search)).status).toBe(400);
  });

  it('When the state has expired, then the expired page shows', async () => {
    const b = new Browser(app.baseUrl);
    const { userId } = await newWeChatUser(app);
    const authorize = await startLogin(b, 'power');
    await app.deps.kv.del(keyspace.linking.state(appId, stateOf(authorize)));
    const cb = new URL(await authorizeAt(app, authorize, userId));
    const r = await b.get(cb.pathname + cb.search);
    expect(r.status).toBe(400);
    expect(r.text).toContain('链接已失效');
  });

  it('When the code was already spent, then a "start again" page shows, never a raw 40163', async () => {
    const b = new Browser(app.baseUrl);
    const { userId } = await newWeChatUser(app);
    const cb = new URL(await authorizeAt(app, await startLogin(b, 'power'), userId));
    await app.deps.wechat.webAuth.exchangeCode({ appId, appSecret: DEMO_ACCOUNT.appSecret, code: cb.searchParams.get('code')! });
    const r = await b.get(cb.pathname + cb.search);
    expect(r.status).toBe(400);
    expect(r.text).toContain('授权已失效');
    expect(r.text).toContain('重新开始');
    expect(r.text).not.toContain('40163');
  });

  it('When a snapshot-page user comes back, then a page explains 使用完整服务 and nothing is linked or logged in (§1.8)', async () => {
    const b = new Browser(app.baseUrl);
    const { userId } = await newWeChatUser(app, { snapshot: true });
    const r = await loginAs(app, b, 'card', userId);
    expect(r.status).toBe(200);
    expect(r.text).toContain('使用完整服务');
    expect(sessionCookie(b)).toBeUndefined();
  });

  it('When WeChat is busy (-1), then a retry page with 503 and Retry-After shows and no identity is written', async () => {
    const b = new Browser(app.baseUrl);
    const { userId } = await newWeChatUser(app);
    await control(app, '/faults', { path: '/sns/oauth2/access_token', errcode: -1, count: 1 });
    const cb = new URL(await authorizeAt(app, await startLogin(b, 'power'), userId));
    const r = await b.get(cb.pathname + cb.search);
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('1');
    expect(r.text).toContain('微信繁忙');
    expect(await identityCount(await openidOf(userId))).toBe(0);
  });

  it('When opened outside WeChat, then a page with a QR code of the link (and the sandbox shortcut in demo) shows', async () => {
    const b = new Browser(app.baseUrl, 'Mozilla/5.0 (X11; Linux x86_64) Chrome/120');
    const r = await b.get('/link/card');
    const page = await b.follow(r);
    expect(page.status).toBe(200);
    expect(page.text).toContain('请在微信中打开');
    expect(page.text).toMatch(/<img src="data:image\/png;base64,[A-Za-z0-9+/=]+"/);
    expect(page.text).toContain(`${app.baseUrl}/wechat/login?merchant=card&amp;next=%2Flink%2Fcard`);
    expect(page.text).toContain('via=sandbox');
    const viaSandbox = await b.get('/wechat/login?merchant=card&next=%2Flink%2Fcard&via=sandbox');
    expect(viaSandbox.status).toBe(302);
    expect(viaSandbox.location).toContain('/connect/oauth2/authorize?');
  });
});
