/**
 * Website QR login (网站应用微信登录), wechat-protocol.md §1.10 and §1.4: Open Platform website
 * apps, the `connect/qrconnect` link checks, the QR waiting for a phone, and the phone's
 * scan-and-confirm that sends the desktop browser to `redirect_uri?code=…&state=…` with a
 * 10-minute single-use code. The code is exchanged at the same `sns/oauth2/access_token`
 * as an official account's (web-auth.service.ts), with the website app's appid/secret.
 * Transport-free: the pages, the JSON control API and the programmatic `Sandbox` share it.
 *
 * A refusal on the phone sends the browser back with `state` only: the older Open Platform
 * text; a newer copy says no redirect happens at all (§13.3). The bridge handles both.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { AppError } from '../http/errors.ts';
import { requireUser } from './directory.ts';
import type { QrLogin, SandboxState, SandboxWebsiteApp } from './state.ts';
import { parseOrThrow } from './validate.ts';
import { appendQuery, issueCode, linkShapeProblem, redirectUriProblem, stateProblem, type AuthorizePageError } from './web-auth.service.ts';

export const registerWebsiteAppSchema = z
  .object({
    appId: z.string().regex(/^[A-Za-z0-9_-]{3,64}$/),
    appSecret: z.string().min(1).max(64),
    name: z.string().min(1).max(60).optional(),
    redirectDomains: z.array(z.string().regex(/^[A-Za-z0-9.-]+$/, 'a bare domain, no scheme, port or path')).min(1),
    allowPortsInRedirect: z.boolean().optional(),
    openPlatformId: z.string().min(1).optional(),
  })
  .strict();
export type RegisterWebsiteAppInput = z.input<typeof registerWebsiteAppSchema>;

/** A website app lives apart from the official accounts; one AppID is never both. */
export function registerWebsiteApp(state: SandboxState, input: RegisterWebsiteAppInput): SandboxWebsiteApp {
  const a = parseOrThrow(registerWebsiteAppSchema, input);
  if (state.apps.has(a.appId)) throw new AppError('request.conflict', `${a.appId} is an official account`);
  const app: SandboxWebsiteApp = {
    appId: a.appId,
    appSecret: a.appSecret,
    name: a.name ?? a.appId,
    redirectDomains: a.redirectDomains,
    allowPortsInRedirect: a.allowPortsInRedirect ?? false,
    openPlatformId: a.openPlatformId,
  };
  state.websiteApps.set(app.appId, app);
  return app;
}

export interface QrConnectRequest {
  app: SandboxWebsiteApp;
  redirectUri: string;
  state: string;
  lang: 'cn' | 'en';
}

export type QrConnectCheck = { ok: true; request: QrConnectRequest } | { ok: false; error: AuthorizePageError };

const refuse = (message: string, detail: string): QrConnectCheck => ({ ok: false, error: { message, detail } });

/**
 * The checks of the QR page, in the order WeChat's page reports them: the link's shape,
 * the AppID (a website app's; an official account's is refused), the callback domain,
 * the scope (`snsapi_login` only), then `state`.
 */
export function checkQrConnect(state: SandboxState, pairs: Array<[string, string]>): QrConnectCheck {
  const shape = linkShapeProblem(pairs);
  if (shape) return refuse('该链接无法访问 / This link cannot be opened', shape);
  const get = (k: string): string | undefined => pairs.find(([key]) => key === k)?.[1];
  const appid = get('appid');
  const redirectUri = get('redirect_uri');
  if (!appid || !redirectUri || !get('scope') || get('response_type') === undefined) {
    return refuse('该链接无法访问 / This link cannot be opened', 'appid, redirect_uri, response_type and scope are required');
  }
  if (get('response_type') !== 'code') return refuse('该链接无法访问 / This link cannot be opened', 'response_type must be code');
  const app = state.websiteApps.get(appid);
  if (!app) return refuse('AppID 参数错误 / Invalid AppID', state.apps.has(appid) ? `${appid} is an official account, not a website app` : `unknown appid ${appid}`);
  const uriProblem = redirectUriProblem(app, redirectUri);
  if (uriProblem) return refuse('redirect_uri 参数错误 / Invalid redirect_uri', uriProblem);
  if (get('scope') !== 'snsapi_login') return refuse('Scope 参数错误或没有 Scope 权限 / Invalid scope', `scope ${get('scope') ?? ''}; a website app has snsapi_login only`);
  const st = get('state') ?? '';
  const badState = stateProblem(st);
  if (badState) return refuse('该链接无法访问 / This link cannot be opened', badState);
  return { ok: true, request: { app, redirectUri, state: st, lang: get('lang') === 'en' ? 'en' : 'cn' } };
}

/** The QR the page shows: it waits `qrLoginTtlSec` for a phone. */
export function startQrLogin(state: SandboxState, req: QrConnectRequest, now: number): QrLogin {
  const login: QrLogin = {
    uuid: randomBytes(12).toString('base64url'),
    appId: req.app.appId,
    redirectUri: req.redirectUri,
    state: req.state,
    lang: req.lang,
    createdAt: now,
    expiresAt: now + state.limits.qrLoginTtlSec * 1000,
    status: 'waiting',
  };
  state.qrLogins.set(login.uuid, login);
  return login;
}

/** A QR still waiting for a phone, or a page error (unknown, expired or already answered). */
export function pendingQrLogin(state: SandboxState, uuid: string, now: number): QrLogin {
  const login = state.qrLogins.get(uuid);
  if (!login || now >= login.expiresAt) throw new AppError('request.not_found', '二维码已失效，请刷新网页 / This QR code has expired; reload the page');
  if (login.status !== 'waiting') throw new AppError('request.conflict', '二维码已使用 / This QR code was already used');
  return login;
}

export interface QrScanOutcome {
  /** Where the desktop browser goes: `redirect_uri` with code and state, or state only when refused. */
  location: string;
  code?: string;
}

/** The phone scanned the QR and its user confirmed (or refused) the login. */
export function answerQrLogin(state: SandboxState, uuid: string, answer: { userId: string; allow: boolean }, now: number): QrScanOutcome {
  const login = pendingQrLogin(state, uuid, now);
  const user = requireUser(state, answer.userId);
  if (!answer.allow) {
    login.status = 'declined';
    login.location = appendQuery(login.redirectUri, { state: login.state });
    return { location: login.location };
  }
  const code = issueCode(state, { appId: login.appId, userId: user.userId, scope: 'snsapi_login', snapshot: false, ttlSec: state.limits.websiteCodeTtlSec, now });
  login.status = 'confirmed';
  login.location = appendQuery(login.redirectUri, { code, state: login.state });
  return { location: login.location, code };
}

/** What the desktop page polls: still waiting, gone, or answered (with where to go). */
export function qrLoginStatus(state: SandboxState, uuid: string, now: number): { status: QrLogin['status'] | 'expired'; location?: string } {
  const login = state.qrLogins.get(uuid);
  if (!login) return { status: 'expired' };
  if (login.status !== 'waiting') return { status: login.status, location: login.location };
  return now >= login.expiresAt ? { status: 'expired' } : { status: 'waiting' };
}
