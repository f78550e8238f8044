/**
 * Website QR login outside WeChat's browser (wechat-protocol.md §1.10; issue 4 "Outside
 * WeChat's browser"), end to end through the sandbox over real HTTP: the desktop page offers
 * the QR login when the merchant's official account has an Open Platform website app, the
 * sandbox's `connect/qrconnect` page is scanned and confirmed by the simulated phone, and the
 * callback resolves the website app's openid to the person's official-account identity by
 * unionid. Identities are never re-keyed: the website app's openid gets its own row.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSessionsService } from '../../src/linking/sessions.service.ts';
import type { TestApp } from '../helpers/app.ts';
import { BOOT_TIMEOUT_MS, Browser, control, DESKTOP_UA, field, loginAs, newWeChatUser, startWebsiteLoginApp, WEBSITE_LOGIN, type Res } from './helpers.ts';

const { oaAppId: OA_APPID, webAppId: WEB_APPID } = WEBSITE_LOGIN;

let app: TestApp;

beforeAll(async () => {
  app = await startWebsiteLoginApp();
}, BOOT_TIMEOUT_MS);
afterAll(async () => {
  await app?.stop();
});

/** The desktop page, then the QR login link it offers: the sandbox's qrconnect URL. */
async function startWebsiteLogin(b: Browser, merchant: string): Promise<string> {
  const page = await b.get(`/wechat/login?merchant=${merchant}&next=${encodeURIComponent(`/link/${merchant}`)}`);
  expect(page.status).toBe(200);
  const href = /href="([^"]*via=website[^"]*)"/.exec(page.text)?.[1]?.replace(/&amp;/g, '&');
  if (!href) throw new Error('no website login offered');
  const r = await b.get(href);
  expect(r.status).toBe(302);
  return r.location!;
}

/** The QR page in the desktop browser, answered by `userId`'s phone (the sandbox phone panel). */
async function scanAndAnswer(b: Browser, qrconnect: string, userId: string, decision: 'allow' | 'decline' = 'allow'): Promise<Res> {
  const page = await b.get(qrconnect.replace('#wechat_redirect', ''));
  expect(page.status).toBe(200);
  const answered = await b.post('/sandbox/connect/qrconnect/confirm', { _csrf: field(page.text, '_csrf'), uuid: field(page.text, 'uuid'), user: userId, decision });
  expect(answered.status).toBe(302);
  const cb = new URL(answered.location!);
  return b.get(cb.pathname + cb.search);
}

const identities = async (openidAppIds: string[]) =>
  (
    await app.deps.db.query<{ id: string; app_id: string; openid: string; unionid: string | null }>(
      'SELECT id, app_id, openid, unionid FROM identities WHERE app_id = ANY($1) ORDER BY created_at',
      [openidAppIds],
    )
  ).rows;

describe('website QR login (wechat-protocol.md §1.10)', () => {
  it('When a desktop browser opens the login, then the QR login is offered only for an account with a website app', async () => {
    const b = new Browser(app.baseUrl, DESKTOP_UA);
    const site = await b.get('/wechat/login?merchant=site');
    expect(site.status).toBe(200);
    expect(site.text).toContain('via=website');
    const plain = await b.get('/wechat/login?merchant=plain');
    expect(plain.status).toBe(200);
    expect(plain.text).not.toContain('via=website');
    // Asking for it anyway on an account without one falls back to the open-in-WeChat page.
    const forced = await b.get('/wechat/login?merchant=plain&via=website');
    expect(forced.status).toBe(200);
    expect(forced.location).toBeNull();
  });

  it('When the QR link is built, then it is the website app\'s qrconnect URL with snsapi_login and our callback marked app=web', async () => {
    const url = new URL((await startWebsiteLogin(new Browser(app.baseUrl, DESKTOP_UA), 'site')).replace('#wechat_redirect', ''));
    expect(url.pathname).toBe('/sandbox/connect/qrconnect');
    expect([...url.searchParams.keys()]).toEqual(['appid', 'redirect_uri', 'response_type', 'scope', 'state', 'lang']);
    expect(url.searchParams.get('appid')).toBe(WEB_APPID);
    expect(url.searchParams.get('scope')).toBe('snsapi_login');
    expect(url.searchParams.get('lang')).toBe('cn');
    expect(url.searchParams.get('redirect_uri')).toBe(`${app.config.publicUrl}/wechat/oauth/callback?oa=oa&app=web`);
  });

  it('When someone who used the service in WeChat scans and confirms, then the desktop is signed in as their official-account identity (by unionid), never re-keyed', async () => {
    const { userId } = await newWeChatUser(app, { nickname: '扫码的人 Scanner' });
    const phone = new Browser(app.baseUrl);
    const first = await loginAs(app, phone, 'site', userId);
    expect(first.status).toBe(302);
    const described = await control<{ accounts: Array<{ appId: string; openid: string; unionid?: string }> }>(app, `/users/${userId}`);
    const oaAccount = described.accounts.find((a) => a.appId === OA_APPID)!;
    const oaIdentity = (await identities([OA_APPID])).find((r) => r.openid === oaAccount.openid);
    expect(oaIdentity?.unionid).toBe(oaAccount.unionid);
    expect(oaIdentity?.unionid).toBeTruthy();

    const desk = new Browser(app.baseUrl, DESKTOP_UA);
    const cb = await scanAndAnswer(desk, await startWebsiteLogin(desk, 'site'), userId);
    expect(cb.status).toBe(302);
    expect(cb.location).toBe('/link/site');
    const sessionId = desk.jar.get('wxb_sess');
    const session = await createSessionsService({ kv: app.deps.kv }).get(sessionId ?? '');
    expect(session).toMatchObject({ identityId: oaIdentity!.id, appId: OA_APPID });
    const accounts = await desk.get('/link/site');
    expect(accounts.status).toBe(200);
    expect(accounts.text).toContain('扫码的人 Scanner');

    // The website openid is its own row with the same unionid; the official-account row is unchanged.
    const rows = await identities([OA_APPID, WEB_APPID]);
    const web = rows.filter((r) => r.app_id === WEB_APPID && r.unionid === oaIdentity!.unionid);
    expect(web).toHaveLength(1);
    expect(web[0]!.openid).not.toBe(oaIdentity!.openid);
    expect(rows.find((r) => r.id === oaIdentity!.id)).toEqual(oaIdentity);
  });

  it('When someone never seen in WeChat scans, then they get the "use it in WeChat first" page and no session', async () => {
    const { userId } = await newWeChatUser(app, { nickname: 'Newcomer' });
    const desk = new Browser(app.baseUrl, DESKTOP_UA);
    const cb = await scanAndAnswer(desk, await startWebsiteLogin(desk, 'site'), userId);
    expect(cb.status).toBe(400);
    expect(cb.text).toContain('请先在微信中使用一次');
    expect(desk.jar.has('wxb_sess')).toBe(false);
  });

  it('When the user refuses on the phone, then the declined page offers to start again, and the state is spent', async () => {
    const { userId } = await newWeChatUser(app);
    const desk = new Browser(app.baseUrl, DESKTOP_UA);
    const qr = await startWebsiteLogin(desk, 'site');
    const page = await desk.get(qr.replace('#wechat_redirect', ''));
    const answered = await desk.post('/sandbox/connect/qrconnect/confirm', { _csrf: field(page.text, '_csrf'), uuid: field(page.text, 'uuid'), user: userId, decision: 'decline' });
    const cb = new URL(answered.location!);
    expect(cb.searchParams.has('code')).toBe(false);
    const declined = await desk.get(cb.pathname + cb.search);
    expect(declined.status).toBe(200);
    expect(declined.text).toContain('/wechat/login?merchant=site');
    // A repeat of the same callback is a duplicate and gets the first outcome (SECURITY.md T7),
    // not a second run; the state itself is spent: brought back with a code, it is refused.
    const again = await desk.get(cb.pathname + cb.search);
    expect(again.status).toBe(200);
    expect(again.text).toContain('/wechat/login?merchant=site');
    const withCode = new URL(cb);
    withCode.searchParams.set('code', 'forgedcode0123');
    expect((await desk.get(withCode.pathname + withCode.search)).status).toBe(400);
  });

  it('When the website callback is opened in another browser, or its code comes back on the official account\'s callback, then it is refused', async () => {
    const { userId } = await newWeChatUser(app);
    await loginAs(app, new Browser(app.baseUrl), 'site', userId);
    const desk = new Browser(app.baseUrl, DESKTOP_UA);
    const qr = new URL((await startWebsiteLogin(desk, 'site')).replace('#wechat_redirect', ''));
    const { location } = await control<{ location: string }>(app, '/qrconnect', {
      appid: qr.searchParams.get('appid'),
      redirect_uri: qr.searchParams.get('redirect_uri'),
      state: qr.searchParams.get('state'),
      userId,
    });
    const cb = new URL(location);
    // Mix-up: the same code and state presented as the official account's.
    const asOa = new URL(cb);
    asOa.searchParams.delete('app');
    expect((await desk.get(asOa.pathname + asOa.search)).status).toBe(400);
    const other = new Browser(app.baseUrl, DESKTOP_UA);
    const stolen = await other.get(cb.pathname + cb.search);
    expect(stolen.status).toBe(400);
    expect(other.jar.has('wxb_sess')).toBe(false);
  });
});
