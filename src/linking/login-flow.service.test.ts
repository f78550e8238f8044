/**
 * The login flow's state machine with fakes (no network, an in-memory Kv): the website-app
 * QR login of wechat-protocol.md §1.10 (end to end through the sandbox in
 * test/linking/website-login.test.ts) and the per-appid separation of states (RFC 9700 §4.4 mix-up).
 */
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { AppConfig } from '../config/index.ts';
import { createMemoryKv } from '../store/kv-memory.ts';
import { createWebAuthClient } from '../wechat/web-auth.ts';
import type { CodeExchangeResult, WebAuthClient } from '../wechat/index.ts';
import type { BindingsService } from './bindings.service.ts';
import { createLoginFlowService } from './login-flow.service.ts';
import { createSessionsService } from './sessions.service.ts';

const OA = { id: 'oa', appId: 'wx00000000000000oa', appSecret: 'oa-secret-123', websiteApp: { appId: 'wx0000000000000web', appSecret: 'web-secret-123' } };

function setup(found: { id: string } | null) {
  const kv = createMemoryKv();
  const tokens: CodeExchangeResult = { openid: 'o-web', unionid: 'u-1', scopes: ['snsapi_login'], accessToken: 'at', refreshToken: 'rt', expiresIn: 7200, isSnapshotUser: false };
  const exchangeCode = vi.fn(async () => {
    await new Promise((r) => setTimeout(r, 20));
    return tokens;
  });
  // The real client builds the URLs (so the QR URL is the one WeChat gets); only the exchange is faked.
  const real = createWebAuthClient({ oauthBaseUrl: 'https://open.weixin.qq.com', apiBaseUrl: 'https://api.weixin.qq.com', logger: pino({ level: 'silent' }) });
  const webAuth: WebAuthClient = { ...real, exchangeCode };
  const upsertFromLogin = vi.fn(async () => ({ id: 'web-identity' }));
  const bindings = { upsertFromLogin, findIdentityByUnionid: vi.fn(async () => found) } as unknown as BindingsService;
  const sessions = createSessionsService({ kv });
  const flow = createLoginFlowService({
    config: { publicUrl: 'https://bridge.example', officialAccounts: [OA], wechat: { oauthBaseUrl: 'https://open.weixin.qq.com', apiBaseUrl: '' } } as unknown as AppConfig,
    merchant: (id) => (id === 'm' ? ({ id: 'm', officialAccount: 'oa', profile: 'base' } as never) : undefined),
    kv,
    webAuth,
    bindings,
    sessions,
    log: pino({ level: 'silent' }),
    now: Date.now,
  });
  return { flow, exchangeCode, upsertFromLogin, sessions };
}

const stateOf = (url: string) => new URL(url.replace('#wechat_redirect', '')).searchParams.get('state')!;

describe('website QR login (wechat-protocol.md §1.10)', () => {
  it('When a desktop user starts it, then the qrconnect URL names the website app, snsapi_login and a callback marked app=web', async () => {
    const { flow } = setup(null);
    const url = new URL((await flow.start({ merchantId: 'm', next: '/x', browserId: 'b1', website: true, lang: 'en' })).replace('#wechat_redirect', ''));
    expect(`${url.origin}${url.pathname}`).toBe('https://open.weixin.qq.com/connect/qrconnect');
    expect([...url.searchParams.keys()]).toEqual(['appid', 'redirect_uri', 'response_type', 'scope', 'state', 'lang']);
    expect(url.searchParams.get('appid')).toBe(OA.websiteApp.appId);
    expect(url.searchParams.get('scope')).toBe('snsapi_login');
    expect(url.searchParams.get('redirect_uri')).toBe('https://bridge.example/wechat/oauth/callback?oa=oa&app=web');
  });

  it('When the unionid belongs to a known identity of the account, then the session is that identity\'s, on the account\'s appid', async () => {
    const { flow, exchangeCode, sessions } = setup({ id: 'oa-identity' });
    const state = stateOf(await flow.start({ merchantId: 'm', next: '/x', browserId: 'b1', website: true }));
    const out = await flow.callback({ oa: 'oa', app: 'web', code: 'c1', state, browserId: 'b1' });
    expect(exchangeCode).toHaveBeenCalledWith({ appId: OA.websiteApp.appId, appSecret: OA.websiteApp.appSecret, code: 'c1' });
    expect(out.kind).toBe('ok');
    const session = await sessions.get((out as { sessionId: string }).sessionId);
    expect(session).toMatchObject({ identityId: 'oa-identity', appId: OA.appId });
  });

  it('When nobody with that unionid has used the account in WeChat, then no session: a page asks to open it in WeChat first', async () => {
    const { flow, upsertFromLogin } = setup(null);
    const state = stateOf(await flow.start({ merchantId: 'm', next: '/x', browserId: 'b1', website: true }));
    const out = await flow.callback({ oa: 'oa', app: 'web', code: 'c1', state, browserId: 'b1' });
    expect(out).toMatchObject({ kind: 'error', reason: 'website_unlinked' });
    expect(upsertFromLogin).toHaveBeenCalledWith(expect.objectContaining({ appId: OA.websiteApp.appId, openid: 'o-web', unionid: 'u-1' }));
  });

  it('When a website state comes back on the official account\'s callback (or the reverse), then it is unknown there (mix-up)', async () => {
    const { flow, exchangeCode } = setup({ id: 'oa-identity' });
    const webState = stateOf(await flow.start({ merchantId: 'm', next: '/x', browserId: 'b1', website: true }));
    expect(await flow.callback({ oa: 'oa', code: 'c1', state: webState, browserId: 'b1' })).toMatchObject({ reason: 'expired' });
    const oaState = stateOf(await flow.start({ merchantId: 'm', next: '/x', browserId: 'b1' }));
    expect(await flow.callback({ oa: 'oa', app: 'web', code: 'c2', state: oaState, browserId: 'b1' })).toMatchObject({ reason: 'expired' });
    expect(exchangeCode).not.toHaveBeenCalled();
  });

  it('When one callback arrives five times at once, then one exchange and five identical outcomes', async () => {
    const { flow, exchangeCode } = setup({ id: 'oa-identity' });
    const state = stateOf(await flow.start({ merchantId: 'm', next: '/x', browserId: 'b1', website: true }));
    const outs = await Promise.all(Array.from({ length: 5 }, () => flow.callback({ oa: 'oa', app: 'web', code: 'c1', state, browserId: 'b1' })));
    expect(exchangeCode).toHaveBeenCalledTimes(1);
    expect(new Set(outs.map((o) => JSON.stringify(o))).size).toBe(1);
  });
});
