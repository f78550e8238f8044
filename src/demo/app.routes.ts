/**
 * The demo merchant H5 app at /demo/app (demo mode only): "Log in with WeChat" →
 * /oauth2/authorize with PKCE → /demo/app/callback, where the code is exchanged
 * server-side and the decoded access token and ID token are shown. This is the end of the
 * newcomer's demo journey (DESIGN.md "Demo mode").
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { AppConfig } from '../config/index.ts';
import type { CookiePolicy } from '../http/cookies.ts';
import { AppError } from '../http/errors.ts';
import type { Feature } from '../http/feature.ts';
import { translator, type Messages } from '../http/i18n.ts';
import { renderPage, type Views } from '../http/views.ts';
import type { Kv } from '../store/kv.ts';
import { createDemoApp, DemoFlowExpired, type DemoAppResult } from './app.service.ts';

type Key = 'title' | 'lead' | 'login' | 'how' | 'resultTitle' | 'account' | 'verified' | 'notVerified' | 'at' | 'idt' | 'userinfo' | 'again' | 'serverSide' | 'refresh';
const text: Messages<Key> = {
  'zh-CN': {
    title: '演示商户 · 信用卡 H5',
    lead: '这是商户自己的网页应用。它通过 wxbridge 以微信登录，并得到一个说明“这个微信用户是哪个信用卡账户”的 JWT。',
    login: '使用微信登录',
    how: '授权码流程 + PKCE（S256）+ state + nonce，使用 openid-client；授权码在服务器端兑换。',
    resultTitle: '登录成功',
    account: '绑定的账户',
    verified: '访问令牌已用 wxbridge/verify 校验（签名、iss、aud、typ、算法）',
    notVerified: '访问令牌校验失败',
    at: '访问令牌（RFC 9068 at+jwt）的声明',
    idt: 'ID 令牌的声明',
    userinfo: 'userinfo 端点的回答',
    again: '重新开始',
    serverSide: '令牌只保存在商户服务器上；此页只显示解码后的声明。',
    refresh: '同时收到了刷新令牌',
  },
  en: {
    title: 'Demo merchant · card H5 app',
    lead: "This is the merchant's own web app. It logs in with WeChat through wxbridge and receives a JWT saying which card account this WeChat user is.",
    login: 'Log in with WeChat',
    how: 'Authorization code + PKCE (S256) + state + nonce with openid-client; the code is exchanged server-side.',
    resultTitle: 'Logged in',
    account: 'Linked account',
    verified: 'Access token checked with wxbridge/verify (signature, iss, aud, typ, algorithm)',
    notVerified: 'Access token verification failed',
    at: 'Access token (RFC 9068 at+jwt) claims',
    idt: 'ID token claims',
    userinfo: 'The userinfo endpoint says',
    again: 'Start again',
    serverSide: 'The tokens stay on the merchant server; this page shows their decoded claims.',
    refresh: 'A refresh token came too',
  },
};

const pretty = (v: unknown) => JSON.stringify(v, null, 2);

export function createDemoAppFeature(deps: { config: AppConfig; kv: Kv; views: Views; cookies: CookiePolicy; fetch?: typeof fetch }): Feature | null {
  const redirectUri = `${deps.config.publicUrl}/demo/app/callback`;
  const merchant = deps.config.merchants.find((m) => m.clients.some((c) => c.redirectUris.includes(redirectUri) && c.clientSecret));
  const client = merchant?.clients.find((c) => c.redirectUris.includes(redirectUri));
  if (!merchant || !client?.clientSecret) return null;
  const app = createDemoApp({
    kv: deps.kv,
    fetch: deps.fetch,
    client: {
      issuer: deps.config.publicUrl,
      merchantId: merchant.id,
      clientId: client.clientId,
      clientSecret: client.clientSecret,
      redirectUri,
      scope: client.scopes.filter((s) => ['openid', 'profile', 'offline_access'].includes(s)).join(' '),
    },
  });
  const cookie = deps.cookies.name('wxb_demo_app');
  const t = (ctx: Context) => translator(text, ctx.state.locale);
  const router = new Router();

  router.get('/demo/app', (ctx) => {
    const tt = t(ctx);
    renderPage(ctx, deps.views, 'demo/app', { title: tt('title'), t: { title: tt('title'), lead: tt('lead'), login: tt('login'), how: tt('how') }, merchant: merchant.name });
  });

  router.get('/demo/app/login', async (ctx) => {
    const { flowId, url } = await app.start();
    ctx.cookies.set(cookie, flowId, deps.cookies.options({ sameSite: 'lax', maxAgeMs: 10 * 60_000 }));
    ctx.redirect(url);
  });

  router.get('/demo/app/callback', async (ctx) => {
    const flowId = ctx.cookies.get(cookie, { signed: true });
    ctx.cookies.set(cookie, '', deps.cookies.options({ sameSite: 'lax', maxAgeMs: 0 }));
    let result: DemoAppResult;
    try {
      result = await app.finish(flowId, `${deps.config.publicUrl}${ctx.url}`);
    } catch (err) {
      if (err instanceof DemoFlowExpired) throw new AppError('flow.expired', 'this demo login expired; start again at /demo/app');
      // An error answer from wxbridge (e.g. access_denied) or a failed check: say so, plainly.
      throw new AppError('flow.declined', `the login did not complete: ${(err as { error?: string; code?: string }).error ?? (err as { code?: string }).code ?? 'error'}`);
    }
    const tt = t(ctx);
    const claims = result.accessToken.claims;
    renderPage(ctx, deps.views, 'demo/app-result', {
      title: tt('resultTitle'),
      t: Object.fromEntries((Object.keys(text.en) as Key[]).map((k) => [k, tt(k)])),
      merchant: merchant.name,
      account: { id: String(claims.account ?? ''), display: String(claims.account_display ?? claims.account ?? '') },
      verified: result.accessToken.verified,
      refreshToken: result.refreshToken,
      atHeader: pretty(result.accessToken.header),
      atClaims: pretty(claims),
      idHeader: result.idToken ? pretty(result.idToken.header) : null,
      idClaims: result.idToken ? pretty(result.idToken.claims) : null,
      userinfo: result.userinfo ? pretty(result.userinfo) : null,
    });
  });

  return { name: 'demo-app', routes: router };
}
