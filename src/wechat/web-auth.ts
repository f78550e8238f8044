/**
 * WeChat web authorization (网页授权), wechat-protocol.md §1: the authorize URL, the Open Platform
 * website app's QR login URL (§1.10), code exchange, user-token refresh, `sns/userinfo` and `sns/auth`. Knows nothing of flows or bindings: the
 * caller owns state storage, code single-flight (SECURITY.md D5) and what a snapshot user means.
 *
 * Retry policy (SECURITY.md D1, D4): idempotent calls (refresh, userinfo, auth) get one retry with
 * jitter on -1. The code exchange gets none: the code may already be consumed (§8 row -1), so a
 * -1 or a timeout is handed to the caller, and a timeout is flagged ambiguous.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { WeChatApiError, WeChatTransportError } from './errors.ts';
import { createWeChatHttp, isBusy, withBackoff, type FetchLike, type WeChatHttp } from './http.ts';

export type WebAuthScope = 'snsapi_base' | 'snsapi_userinfo';

export interface WebAuthClientOptions {
  /** `https://open.weixin.qq.com` in production; the sandbox root in tests. */
  oauthBaseUrl: string;
  /** `https://api.weixin.qq.com` in production. */
  apiBaseUrl: string;
  fetch?: FetchLike;
  timeoutMs?: number;
  logger: Logger;
  /** WeChat rejects a port in redirect_uri (§1.1, page error 10003); allow it for the sandbox. */
  allowPortInRedirectUri?: boolean;
  /** For tests of the -1 retry. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export interface AuthorizeUrlParams {
  appId: string;
  redirectUri: string;
  scope: WebAuthScope;
  state: string;
  forcePopup?: boolean;
}

/** §1.10: the QR login page of an Open Platform website app (not an official account). */
export interface QrConnectUrlParams {
  /** The website app's AppID. */
  appId: string;
  redirectUri: string;
  state: string;
  /** Language of WeChat's QR page; WeChat's default is `cn`. */
  lang?: 'cn' | 'en';
}

export interface UserTokenSet {
  openid: string;
  unionid?: string;
  /** Granted scopes, from WeChat's comma list (a trailing comma is tolerated). */
  scopes: string[];
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

export interface CodeExchangeResult extends UserTokenSet {
  /** `is_snapshotuser: 1` — a virtual snapshot-page identity (§1.8): never link it. */
  isSnapshotUser: boolean;
}

export interface WebUserInfo {
  openid: string;
  nickname: string;
  /** 0 unknown (always 0 since Oct 2021), 1 male, 2 female. */
  sex: number;
  province: string;
  city: string;
  country: string;
  /** Last path segment is the size (`0` = 640×640); empty without an avatar. */
  headImgUrl: string;
  privilege: string[];
  unionid?: string;
  language?: string;
}

const STATE_RE = /^[A-Za-z0-9]{1,128}$/;
const APPID_RE = /^[A-Za-z0-9_-]{1,64}$/;

const tokenSetSchema = z.object({
  access_token: z.string().min(1),
  expires_in: z.coerce.number().int().positive(),
  refresh_token: z.string().min(1),
  openid: z.string().min(1),
  scope: z.string(),
  unionid: z.string().min(1).optional(),
  is_snapshotuser: z.union([z.number(), z.string()]).optional(),
});

const userInfoSchema = z.object({
  openid: z.string().min(1),
  nickname: z.string().default(''),
  // wechatpy's fixture has sex as "1": accept both, anything else reads as unknown (0).
  sex: z
    .union([z.number(), z.string()])
    .optional()
    .transform((v) => {
      const n = Number(v ?? 0);
      return Number.isInteger(n) ? n : 0;
    }),
  province: z.string().default(''),
  city: z.string().default(''),
  country: z.string().default(''),
  headimgurl: z.string().default(''),
  privilege: z.array(z.string()).default([]),
  unionid: z.string().min(1).optional(),
  language: z.string().optional(),
});

const okSchema = z.object({ errcode: z.literal(0).optional(), errmsg: z.string().optional() });

export interface WebAuthClient {
  authorizeUrl(params: AuthorizeUrlParams): string;
  /** `connect/qrconnect` with scope `snsapi_login`: the code comes back to `redirectUri` like §1.4. */
  qrConnectUrl(params: QrConnectUrlParams): string;
  exchangeCode(params: { appId: string; appSecret: string; code: string }): Promise<CodeExchangeResult>;
  /** `expectedOpenid`, when given, must equal the openid WeChat returns. */
  refresh(params: { appId: string; refreshToken: string; expectedOpenid?: string }): Promise<UserTokenSet>;
  userInfo(params: { accessToken: string; openid: string; lang?: 'zh_CN' | 'zh_TW' | 'en' }): Promise<WebUserInfo>;
  /**
   * True when WeChat accepts the user token for this openid; false on a bad/expired token or a
   * token/openid mismatch (40001/40014/42001/40003). Other failures throw.
   */
  checkToken(params: { accessToken: string; openid: string }): Promise<boolean>;
}

export function createWebAuthClient(opts: WebAuthClientOptions): WebAuthClient {
  const oauthBase = opts.oauthBaseUrl.replace(/\/+$/, '');
  const logger = opts.logger.child({ component: 'wechat.web-auth' });
  const http: WeChatHttp = createWeChatHttp({
    baseUrl: opts.apiBaseUrl,
    fetch: opts.fetch,
    timeoutMs: opts.timeoutMs,
    logger,
  });
  const retryBusyOnce = <T>(fn: () => Promise<T>): Promise<T> =>
    withBackoff(fn, isBusy, { attempts: 2, baseMs: 100, capMs: 1_000, sleep: opts.sleep, random: opts.random });

  /** The checks both links share (§1.1, §1.2); `what` names the method in the error. */
  function checkLink(what: string, p: { appId: string; redirectUri: string; state: string }): void {
    if (!APPID_RE.test(p.appId)) throw new TypeError(`${what}: invalid appId`);
    // WeChat echoes state unchanged only within this charset and length (§1.2).
    if (!STATE_RE.test(p.state)) throw new TypeError(`${what}: state must match [a-zA-Z0-9]{1,128}`);
    // A fragment would swallow the code WeChat appends (§1.2).
    if (p.redirectUri.includes('#')) throw new TypeError(`${what}: redirect_uri must not contain #`);
    let parsed: URL;
    try {
      parsed = new URL(p.redirectUri);
    } catch {
      throw new TypeError(`${what}: redirect_uri must be an absolute URL`);
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
      throw new TypeError(`${what}: redirect_uri must be http(s)`);
    }
    if (parsed.port !== '' && !opts.allowPortInRedirectUri) {
      throw new TypeError(`${what}: WeChat rejects a port in redirect_uri`);
    }
  }

  function authorizeUrl(p: AuthorizeUrlParams): string {
    if (p.scope !== 'snsapi_base' && p.scope !== 'snsapi_userinfo') throw new TypeError('authorizeUrl: invalid scope');
    checkLink('authorizeUrl', p);
    // The parameter order is validated by WeChat and must stay exactly this (§1.2).
    return (
      `${oauthBase}/connect/oauth2/authorize?appid=${p.appId}` +
      `&redirect_uri=${encodeURIComponent(p.redirectUri)}` +
      `&response_type=code&scope=${p.scope}&state=${p.state}` +
      `${p.forcePopup ? '&forcePopup=true' : ''}#wechat_redirect`
    );
  }

  function qrConnectUrl(p: QrConnectUrlParams): string {
    if (p.lang !== undefined && p.lang !== 'cn' && p.lang !== 'en') throw new TypeError('qrConnectUrl: lang must be cn or en');
    checkLink('qrConnectUrl', p);
    // §1.10: the §1.2 parameter order, scope snsapi_login, `lang` after the checked part.
    return (
      `${oauthBase}/connect/qrconnect?appid=${p.appId}` +
      `&redirect_uri=${encodeURIComponent(p.redirectUri)}` +
      `&response_type=code&scope=snsapi_login&state=${p.state}` +
      `${p.lang ? `&lang=${p.lang}` : ''}#wechat_redirect`
    );
  }

  async function exchangeCode(p: { appId: string; appSecret: string; code: string }): Promise<CodeExchangeResult> {
    const body = await http.call({
      method: 'GET',
      path: '/sns/oauth2/access_token',
      query: { appid: p.appId, secret: p.appSecret, code: p.code, grant_type: 'authorization_code' },
      secrets: [p.appSecret, p.code],
      schema: tokenSetSchema,
      idempotent: false,
    });
    return {
      ...toTokenSet(body),
      isSnapshotUser: body.is_snapshotuser !== undefined && Number(body.is_snapshotuser) === 1,
    };
  }

  async function refresh(p: { appId: string; refreshToken: string; expectedOpenid?: string }): Promise<UserTokenSet> {
    const body = await retryBusyOnce(() =>
      http.call({
        method: 'GET',
        path: '/sns/oauth2/refresh_token',
        query: { appid: p.appId, grant_type: 'refresh_token', refresh_token: p.refreshToken },
        secrets: [p.refreshToken],
        schema: tokenSetSchema,
        idempotent: true,
      }),
    );
    if (p.expectedOpenid !== undefined && body.openid !== p.expectedOpenid) {
      throw mismatch('/sns/oauth2/refresh_token');
    }
    return toTokenSet(body);
  }

  async function userInfo(p: { accessToken: string; openid: string; lang?: 'zh_CN' | 'zh_TW' | 'en' }): Promise<WebUserInfo> {
    const body = await retryBusyOnce(() =>
      http.call({
        method: 'GET',
        path: '/sns/userinfo',
        query: { access_token: p.accessToken, openid: p.openid, lang: p.lang ?? 'zh_CN' },
        secrets: [p.accessToken],
        schema: userInfoSchema,
        idempotent: true,
      }),
    );
    if (body.openid !== p.openid) throw mismatch('/sns/userinfo');
    return {
      openid: body.openid,
      nickname: body.nickname,
      sex: body.sex,
      province: body.province,
      city: body.city,
      country: body.country,
      headImgUrl: body.headimgurl,
      privilege: body.privilege,
      ...(body.unionid ? { unionid: body.unionid } : {}),
      ...(body.language !== undefined ? { language: body.language } : {}),
    };
  }

  async function checkToken(p: { accessToken: string; openid: string }): Promise<boolean> {
    try {
      await retryBusyOnce(() =>
        http.call({
          method: 'GET',
          path: '/sns/auth',
          query: { access_token: p.accessToken, openid: p.openid },
          secrets: [p.accessToken],
          schema: okSchema,
          idempotent: true,
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof WeChatApiError && (err.kind === 'token_invalid' || err.errcode === 40003)) return false;
      throw err;
    }
  }

  return { authorizeUrl, qrConnectUrl, exchangeCode, refresh, userInfo, checkToken };
}

function toTokenSet(body: z.infer<typeof tokenSetSchema>): UserTokenSet {
  return {
    openid: body.openid,
    ...(body.unionid ? { unionid: body.unionid } : {}),
    scopes: parseScopes(body.scope),
    accessToken: body.access_token,
    refreshToken: body.refresh_token,
    expiresIn: body.expires_in,
  };
}

/** `"snsapi_base,snsapi_userinfo,"` → `['snsapi_base', 'snsapi_userinfo']`. */
export function parseScopes(scope: string): string[] {
  return scope
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function mismatch(endpoint: string): WeChatTransportError {
  // An answer about another user than the one we asked for: never use it.
  return new WeChatTransportError('invalid_payload', endpoint, false, { detail: 'openid differs from the expected one' });
}
