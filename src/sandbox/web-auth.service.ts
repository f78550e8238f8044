/**
 * Web authorization (网页授权), wechat-protocol.md §1 and §10 item 4: the authorize-link
 * checks, 5-minute single-use codes, user tokens with 30-day refresh tokens, snapshot-page
 * identities, and the sns/* token checks. Transport-free: the HTML page, the JSON control
 * variant and the sns routes share it. The sns/* endpoints also serve the Open Platform
 * website apps of the QR login (§1.10, `qrconnect.service.ts`), with their own appid/secret.
 */
import { newAccessToken, openidFor, randomAlnum, snapshotOpenidFor, snapshotUnionidFor, tokenShape, unionidFor } from './ids.ts';
import type { SandboxApp, SandboxState, SandboxWebsiteApp, SnsScope, UserToken, WebAuthScope } from './state.ts';
import { relationOf, requireUser } from './directory.ts';
import { checkCredentials } from './tokens.service.ts';
import { fail } from './wx-response.ts';

export interface AuthorizeRequest {
  app: SandboxApp;
  redirectUri: string;
  scope: WebAuthScope;
  state: string;
  forcePopup: boolean;
}

/** What the authorize page shows instead of proceeding. `code` only where WeChat has one. */
export interface AuthorizePageError {
  code?: 10003 | 10005;
  message: string;
  detail: string;
}

export type AuthorizeCheck = { ok: true; request: AuthorizeRequest } | { ok: false; error: AuthorizePageError };

/** §1.2: WeChat checks the link against a strict pattern, parameter order included. */
const ORDER = ['appid', 'redirect_uri', 'response_type', 'scope', 'state'] as const;

const broken = (detail: string): AuthorizeCheck => ({ ok: false, error: { message: '该链接无法访问 / This link cannot be opened', detail } });

/** The link's shape (§1.2): each checked parameter once, in WeChat's order. Also the QR login's (§1.10). */
export function linkShapeProblem(pairs: Array<[string, string]>): string | undefined {
  const known = pairs.filter(([k]) => (ORDER as readonly string[]).includes(k)).map(([k]) => k);
  if (new Set(known).size !== known.length) return 'duplicate parameter';
  const positions = known.map((k) => ORDER.indexOf(k as (typeof ORDER)[number]));
  if (positions.some((p, i) => i > 0 && p < (positions[i - 1] ?? -1))) return `parameters must come in the order ${ORDER.join(', ')}`;
  return undefined;
}

/** §1.2: `state` is echoed unchanged only within this charset and length. */
export const stateProblem = (st: string): string | undefined =>
  /^[A-Za-z0-9]*$/.test(st) && Buffer.byteLength(st) <= 128 ? undefined : 'state must be at most 128 characters of a-z, A-Z, 0-9';

/** Validates the authorize link from its parameters in the order they were sent. */
export function checkAuthorize(state: SandboxState, pairs: Array<[string, string]>): AuthorizeCheck {
  const shape = linkShapeProblem(pairs);
  if (shape) return broken(shape);
  const get = (k: string): string | undefined => pairs.find(([key]) => key === k)?.[1];
  const appid = get('appid');
  const redirectUri = get('redirect_uri');
  const scope = get('scope');
  if (!appid || !redirectUri || !scope || get('response_type') === undefined) {
    return broken('appid, redirect_uri, response_type and scope are required');
  }
  if (get('response_type') !== 'code') return broken('response_type must be code');
  const app = state.apps.get(appid);
  if (!app) return broken(`invalid appid ${appid}`);

  const uriProblem = redirectUriProblem(app, redirectUri);
  if (uriProblem) return { ok: false, error: { code: 10003, message: 'redirect_uri域名与后台配置不一致', detail: uriProblem } };
  if ((scope !== 'snsapi_base' && scope !== 'snsapi_userinfo') || !app.verified) {
    return { ok: false, error: { code: 10005, message: '此公众号并没有这些scope的权限', detail: `scope ${scope}` } };
  }
  const st = get('state') ?? '';
  const badState = stateProblem(st);
  if (badState) return broken(badState);
  return { ok: true, request: { app, redirectUri, scope, state: st, forcePopup: get('forcePopup') === 'true' } };
}

/** §1.1: an absolute URL whose host is exactly a configured domain, without a port. */
export function redirectUriProblem(app: Pick<SandboxApp, 'redirectDomains' | 'allowPortsInRedirect'>, uri: string): string | undefined {
  if (uri.includes('#')) return 'redirect_uri must not contain #';
  const authority = /^https?:\/\/([^/?#]*)/i.exec(uri)?.[1];
  if (authority === undefined || authority.includes('@')) return 'redirect_uri must be an absolute http(s) URL';
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return 'redirect_uri is not a URL';
  }
  // Look at the raw authority: `new URL` hides an explicit default port such as :80.
  if (/:\d*$/.test(authority) && !app.allowPortsInRedirect) return 'redirect_uri must not contain a port';
  const host = url.hostname.toLowerCase();
  if (!app.redirectDomains.some((d) => d.toLowerCase() === host)) return `domain ${host} is not configured`;
  return undefined;
}

/** §1.4: `?code=…&state=…`, or `&…` when the URI already has a query. */
export function appendQuery(uri: string, params: Record<string, string>): string {
  const qs = new URLSearchParams(params).toString();
  if (!uri.includes('?')) return `${uri}?${qs}`;
  return uri.endsWith('?') || uri.endsWith('&') ? `${uri}${qs}` : `${uri}&${qs}`;
}

export interface AuthorizeOutcome {
  /** One entry, or two identical ones when the double redirect is on. */
  redirects: string[];
  code?: string;
}

export function completeAuthorize(
  state: SandboxState,
  req: AuthorizeRequest,
  decision: { userId: string; allow: boolean; doubleRedirect?: boolean },
  salt: string,
  now: number,
): AuthorizeOutcome {
  const user = requireUser(state, decision.userId);
  // §1.4/§13.3: a refusal redirects with state only; the callback must read it as "declined".
  if (!decision.allow) return { redirects: [appendQuery(req.redirectUri, { state: req.state })] };
  relationOf(state, req.app.appId, user.userId, salt);
  const code = issueCode(state, {
    appId: req.app.appId,
    userId: user.userId,
    scope: req.scope,
    // The snapshot page only stands in for the userinfo consent popup (§1.8).
    snapshot: user.snapshot && req.scope === 'snsapi_userinfo',
    ttlSec: state.limits.codeTtlSec,
    now,
  });
  const location = appendQuery(req.redirectUri, { code, state: req.state });
  const twice = decision.doubleRedirect ?? req.app.doubleRedirect;
  return { redirects: twice ? [location, location] : [location], code };
}

/** A fresh single-use code (§1.4): 5 minutes for an official account, 10 for a website app. */
export function issueCode(state: SandboxState, c: { appId: string; userId: string; scope: SnsScope; snapshot: boolean; ttlSec: number; now: number }): string {
  const code = randomAlnum(32);
  state.codes.set(code, { code, appId: c.appId, userId: c.userId, scope: c.scope, snapshot: c.snapshot, issuedAt: c.now, expiresAt: c.now + c.ttlSec * 1000 });
  return code;
}

/** §1.10: a website app's appid/secret work at the same sns/* endpoints; checked like §1.5's. */
function snsCredentials(state: SandboxState, appid: string | undefined, secret: string | undefined): SandboxApp | SandboxWebsiteApp {
  const web = appid === undefined ? undefined : state.websiteApps.get(appid);
  if (!web) return checkCredentials(state, appid, secret);
  if (!secret) fail(41004);
  if (secret !== web.appSecret) fail(/^[0-9a-f]{32}$/.test(secret) ? 40001 : 40125);
  return web;
}

export interface CodeExchangeQuery {
  appid?: string;
  secret?: string;
  code?: string;
  grant_type?: string;
}

export function exchangeCode(state: SandboxState, q: CodeExchangeQuery, salt: string, now: number): Record<string, unknown> {
  const app = snsCredentials(state, q.appid, q.secret);
  if (q.grant_type !== 'authorization_code') fail(40002);
  if (!q.code) fail(41008);
  const rec = state.codes.get(q.code);
  if (!rec || rec.appId !== app.appId || now >= rec.expiresAt) fail(40029);
  if (rec.usedAt !== undefined) fail(40163);
  rec.usedAt = now;
  const user = state.users.get(rec.userId);
  if (!user) fail(40029);

  // A website app has no followers, so no relation: only its own openid per person (§1.10).
  const website = state.websiteApps.has(app.appId);
  const openid = website ? openidFor(app.appId, user.userId, salt) : relationOf(state, app.appId, user.userId, salt).openid;
  // The unionid comes with a userinfo-level grant once the app is bound to an Open Platform
  // account; snsapi_login is one (§1.10), and some accounts send it for snsapi_base (§13.4).
  const userinfoLevel = rec.scope === 'snsapi_userinfo' || rec.scope === 'snsapi_login' || ('unionIdInBaseScope' in app && app.unionIdInBaseScope);
  const wantsUnion = app.openPlatformId !== undefined && user.hasUnionId && userinfoLevel;
  const token: UserToken = {
    accessToken: newAccessToken(),
    refreshToken: newAccessToken(),
    appId: app.appId,
    userId: user.userId,
    openid: rec.snapshot ? snapshotOpenidFor(app.appId, user.userId, salt) : openid,
    unionid: wantsUnion && app.openPlatformId
      ? (rec.snapshot ? snapshotUnionidFor : unionidFor)(app.openPlatformId, user.userId, salt)
      : undefined,
    scope: rec.scope,
    snapshot: rec.snapshot,
    expiresAt: now + state.limits.userTokenTtlSec * 1000,
    refreshExpiresAt: now + state.limits.refreshTokenTtlSec * 1000,
  };
  state.userTokens.set(token.accessToken, token);
  state.refreshTokens.set(token.refreshToken, token);
  return {
    access_token: token.accessToken,
    expires_in: state.limits.userTokenTtlSec,
    refresh_token: token.refreshToken,
    openid: token.openid,
    scope: token.scope,
    ...(token.snapshot ? { is_snapshotuser: 1 } : {}),
    ...(token.unionid ? { unionid: token.unionid } : {}),
  };
}

export interface RefreshQuery {
  appid?: string;
  grant_type?: string;
  refresh_token?: string;
}

/** §1.6: a live access token is kept and extended; an expired one is replaced. */
export function refreshUserToken(state: SandboxState, q: RefreshQuery, now: number): Record<string, unknown> {
  if (!q.appid) fail(41002);
  if (!state.apps.has(q.appid) && !state.websiteApps.has(q.appid)) fail(40013);
  if (q.grant_type !== 'refresh_token') fail(40002);
  const token = q.refresh_token ? state.refreshTokens.get(q.refresh_token) : undefined;
  if (!token || token.appId !== q.appid) fail(40030);
  if (now >= token.refreshExpiresAt) fail(42002);
  if (now >= token.expiresAt) {
    state.userTokens.delete(token.accessToken);
    token.accessToken = newAccessToken();
    state.userTokens.set(token.accessToken, token);
  }
  token.expiresAt = now + state.limits.userTokenTtlSec * 1000;
  return {
    access_token: token.accessToken,
    expires_in: state.limits.userTokenTtlSec,
    refresh_token: token.refreshToken,
    openid: token.openid,
    scope: token.scope,
  };
}

/** The checks shared by sns/userinfo and sns/auth. */
export function checkUserToken(state: SandboxState, accessToken: string | undefined, openid: string | undefined, now: number): UserToken {
  if (!accessToken) fail(41001);
  const token = state.userTokens.get(accessToken);
  if (!token) fail(tokenShape.test(accessToken) ? 40001 : 40014);
  if (now >= token.expiresAt) fail(42001);
  if (!openid) fail(41009);
  if (openid !== token.openid) fail(40003);
  return token;
}

/** §1.7 and §1.8: neutralised sex/region; 48001 for base-scope and snapshot tokens. */
export function userInfo(state: SandboxState, token: UserToken): Record<string, unknown> {
  if (token.scope === 'snsapi_base' || token.snapshot) fail(48001);
  const user = state.users.get(token.userId);
  if (!user) fail(40003);
  return {
    openid: token.openid,
    nickname: user.nickname,
    sex: 0,
    province: '',
    city: '',
    country: '',
    headimgurl: user.avatarUrl,
    privilege: [],
    ...(token.unionid ? { unionid: token.unionid } : {}),
  };
}
