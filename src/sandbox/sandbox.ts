/**
 * The faithful fake WeChat (wechat-protocol.md §10 is its spec): open.weixin.qq.com's
 * authorize page and api.weixin.qq.com's APIs at the root of one Koa app, a pusher that
 * plays WeChat's message push, a JSON control API and demo pages (a phone per simulated
 * user). State is in memory; it never touches the bridge's database.
 *
 * Standalone: `npm run sandbox` (main.ts). In demo mode the bridge mounts `app` at
 * `/sandbox` (the mount strips the prefix; `basePath` builds links). Mount it before any
 * body parser: the sandbox reads raw bodies itself.
 */
import Koa, { type Context, type Next } from 'koa';
import { AppError } from '../http/errors.ts';
import { createAuthorizeRoutes } from './authorize.routes.ts';
import { BodyTooLargeError, readRawBody } from './body.ts';
import { createControlRoutes } from './control.routes.ts';
import { createScheduler, type SandboxDeps, type SandboxLogger } from './deps.ts';
import { createUser, optIn, patchRelation, registerApp, relationOf, requireApp, requireUser, updateApp } from './directory.ts';
import { createFaultMiddleware, createFaultRule } from './faults.ts';
import { unionidFor } from './ids.ts';
import { createInteractions } from './interactions.ts';
import { createMessageRoutes } from './messages.routes.ts';
import { createPageKit } from './page-kit.ts';
import { createPageRoutes } from './pages.routes.ts';
import { createPusher } from './pusher.ts';
import { createQrConnectRoutes } from './qrconnect.routes.ts';
import { answerQrLogin, checkQrConnect, registerWebsiteApp, startQrLogin } from './qrconnect.service.ts';
import { AuthorizeRejected, type SandboxControl, type UserDescription } from './sandbox.types.ts';
import { createState, nextSeq, type CallRecord, type SandboxLimits } from './state.ts';
import { createTokenRoutes } from './tokens.routes.ts';
import { createUserRoutes } from './users.routes.ts';
import { checkAuthorize, completeAuthorize } from './web-auth.service.ts';
import { createWebAuthApiRoutes } from './web-auth.routes.ts';
import { appendCapped, pruneState } from './housekeeping.ts';
import { callMeta, wxError } from './wx-response.ts';

export type * from './sandbox.types.ts';
export type { SandboxState, SandboxLimits, SandboxApp, SandboxWebsiteApp, SandboxUser, PushResult, DeliveredMessage, CallRecord } from './state.ts';
export type { FaultSpec } from './faults.ts';
export type { UserAction } from './interactions.ts';
export type { UrlVerification } from './pusher.ts';
export { AuthorizeRejected } from './sandbox.types.ts';

export interface SandboxOptions {
  /** '' standalone, '/sandbox' when mounted; used to build links and forms in its pages. */
  basePath?: string;
  /** Injectable clock (ms) for tests. */
  now?: () => number;
  /** Pusher transport (tests inject). */
  fetch?: typeof fetch;
  logger?: SandboxLogger;
  /** Per push attempt; WeChat's deadline is 5 s (§5.7). */
  pushTimeoutMs?: number;
  /** Attempts in total, default 3 (§13.2). */
  pushAttempts?: number;
  pushRetryDelayMs?: number;
  /** Overrides of WeChat's numbers (quotas, lifetimes, page sizes). */
  limits?: Partial<SandboxLimits>;
  /** Mixed into derived openids/unionids, to keep parallel test runs apart. */
  idSalt?: string;
}

export interface Sandbox extends SandboxControl {
  app: Koa;
  close(): Promise<void>;
}

const silent: SandboxLogger = { info: () => {}, warn: () => {} };
const isApiPath = (path: string): boolean => path.startsWith('/cgi-bin/') || path.startsWith('/sns/');

export function createSandbox(opts: SandboxOptions = {}): Sandbox {
  const logger = opts.logger ?? silent;
  const baseNow = opts.now ?? Date.now;
  let clockOffset = 0;
  const state = createState(opts.limits);
  const deps: SandboxDeps = {
    state,
    now: () => baseNow() + clockOffset,
    salt: opts.idSalt ?? '',
    basePath: (opts.basePath ?? '').replace(/\/+$/, ''),
    logger,
    scheduler: createScheduler(logger),
  };
  const pusher = createPusher(deps, {
    fetch: opts.fetch ?? globalThis.fetch,
    timeoutMs: opts.pushTimeoutMs ?? 5000,
    attempts: opts.pushAttempts ?? 3,
    retryDelayMs: opts.pushRetryDelayMs ?? 0,
  });
  const interactions = createInteractions(deps, pusher);

  const control: SandboxControl = {
    state,
    now: deps.now,
    registerApp: (a) => registerApp(state, a, deps.salt),
    updateApp: (appId, patch) => updateApp(state, appId, patch),
    createUser: (u = {}) => createUser(state, u, deps.salt, deps.now()),
    describeUser: (userId) => describeUser(userId),
    openid: (appId, userId) => relationOf(state, appId, requireUser(state, userId).userId, deps.salt).openid,
    setRelation: (appId, userId, patch) => patchRelation(state, appId, userId, patch, deps.salt),
    optIn: (appId, userId, templateId, longTerm = false) => {
      requireUser(state, userId);
      optIn(state, appId, userId, templateId, longTerm, deps.salt);
    },
    push: (p) => interactions.push(p),
    verifyPushUrl: (appId) => pusher.verifyUrl(requireApp(state, appId)),
    act: (appId, userId, action) => interactions.act(appId, userId, action),
    authorize(a) {
      const pairs: Array<[string, string]> = [
        ['appid', a.appid],
        ['redirect_uri', a.redirect_uri],
        ['response_type', a.response_type ?? 'code'],
        ['scope', a.scope],
        ...(a.state !== undefined ? ([['state', a.state]] as Array<[string, string]>) : []),
      ];
      const check = checkAuthorize(state, pairs);
      if (!check.ok) throw new AuthorizeRejected(check.error);
      const out = completeAuthorize(
        state,
        check.request,
        { userId: a.userId, allow: (a.decision ?? 'allow') === 'allow', doubleRedirect: a.doubleRedirect },
        deps.salt,
        deps.now(),
      );
      return { location: out.redirects[0] ?? '', redirects: out.redirects, code: out.code };
    },
    registerWebsiteApp: (a) => registerWebsiteApp(state, a),
    qrConnect(a) {
      const pairs: Array<[string, string]> = [
        ['appid', a.appid],
        ['redirect_uri', a.redirect_uri],
        ['response_type', a.response_type ?? 'code'],
        ['scope', a.scope ?? 'snsapi_login'],
        ...(a.state !== undefined ? ([['state', a.state]] as Array<[string, string]>) : []),
        ...(a.lang !== undefined ? ([['lang', a.lang]] as Array<[string, string]>) : []),
      ];
      const check = checkQrConnect(state, pairs);
      if (!check.ok) throw new AuthorizeRejected(check.error);
      const login = startQrLogin(state, check.request, deps.now());
      return answerQrLogin(state, login.uuid, { userId: a.userId, allow: (a.decision ?? 'allow') === 'allow' }, deps.now());
    },
    inject: (f) => void state.faults.push(createFaultRule(f)),
    clearFaults: () => void state.faults.splice(0),
    messages: (f = {}) =>
      state.messages.filter(
        (m) => (!f.appId || m.appId === f.appId) && (!f.userId || m.userId === f.userId) && (!f.openid || m.openid === f.openid) && (!f.kind || m.kind === f.kind),
      ),
    pushes: (f = {}) => state.pushes.filter((p) => (!f.appId || p.appId === f.appId) && (!f.userId || p.userId === f.userId)),
    calls: (path) => state.calls.filter((c) => path === undefined || c.path === path),
    setLimits(patch) {
      for (const [k, v] of Object.entries(patch)) {
        if (!(k in state.limits) || typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new AppError('request.invalid', `bad limit ${k}`);
      }
      Object.assign(state.limits, patch);
      return state.limits;
    },
    advanceClock: (ms) => void (clockOffset += ms),
    idle: () => deps.scheduler.idle(),
    reset() {
      deps.scheduler.cancel();
      clockOffset = 0;
      Object.assign(state, createState(opts.limits));
    },
  };

  function describeUser(userId: string): UserDescription {
    const user = requireUser(state, userId);
    const now = deps.now();
    const win = (g: { quota: number; used: number; expiresAt: number } | undefined) =>
      g && now < g.expiresAt ? { remaining: g.quota - g.used, expiresAt: g.expiresAt } : undefined;
    return {
      ...user,
      accounts: [...state.apps.values()].map((app) => {
        const rel = relationOf(state, app.appId, userId, deps.salt);
        return {
          appId: app.appId,
          openid: rel.openid,
          ...(app.openPlatformId && user.hasUnionId ? { unionid: unionidFor(app.openPlatformId, userId, deps.salt) } : {}),
          following: rel.following,
          blacklisted: rel.blacklisted,
          messagesOff: rel.messagesOff,
          window: { message: win(rel.windows.message), event: win(rel.windows.event) },
        };
      }),
    };
  }

  const kit = createPageKit(deps.basePath);
  const app = new Koa();
  app.use(callLog);
  const faults = createFaultMiddleware({
    rules: () => state.faults,
    appIdOf: async (ctx) => appIdOf(ctx) ?? (ctx.method === 'POST' ? appIdInBody(ctx) : undefined),
    markFault: (ctx, kind) => void ((ctx.state as { sandboxFault?: CallRecord['fault'] }).sandboxFault = kind),
  });
  // Faults only ever apply to the fake WeChat's API, never to control or pages.
  app.use((ctx, next) => (isApiPath(ctx.path) ? faults(ctx, next) : next()));
  app.use(pageErrors);
  for (const router of [
    createTokenRoutes(deps),
    createWebAuthApiRoutes(deps),
    createMessageRoutes(deps, interactions),
    createUserRoutes(deps),
    createAuthorizeRoutes(deps, kit),
    createQrConnectRoutes(deps, kit),
    createControlRoutes(control),
    createPageRoutes(deps, control, kit),
  ]) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }

  /** Best-effort owner of a request before its handler runs: `appid` or the token's app. */
  function appIdOf(ctx: Context): string | undefined {
    if (typeof ctx.query.appid === 'string') return ctx.query.appid;
    const token = typeof ctx.query.access_token === 'string' ? ctx.query.access_token : undefined;
    if (!token) return undefined;
    return state.accountTokens.get(token)?.appId ?? state.userTokens.get(token)?.appId;
  }

  /** stable_token carries its appid in the JSON body (§2.2). */
  async function appIdInBody(ctx: Context): Promise<string | undefined> {
    try {
      const v = JSON.parse(await readRawBody(ctx)) as { appid?: unknown };
      return typeof v.appid === 'string' ? v.appid : undefined;
    } catch {
      return undefined;
    }
  }

  async function callLog(ctx: Context, next: Next): Promise<void> {
    if (!isApiPath(ctx.path)) return next();
    const rec: CallRecord = { seq: nextSeq(state), at: deps.now(), method: ctx.method, path: ctx.path, errcode: 0, ip: ctx.ip };
    appendCapped(state.calls, rec, state.limits.logCap);
    if (rec.seq % 1000 === 0) pruneState(state, deps.now());
    try {
      await next();
      // A known API called with the wrong method: WeChat answers 43001/43002, not HTTP 405.
      if (ctx.status === 405) wxError(ctx, ctx.method === 'GET' ? 43002 : 43001);
      else if (ctx.status === 404 && ctx.body === undefined) {
        ctx.status = 404;
        ctx.body = 'sandbox: no such WeChat API';
        callMeta(ctx).errcode = 404;
      }
    } catch (err) {
      if (err instanceof BodyTooLargeError) wxError(ctx, 44002, 'post data too large');
      else {
        logger.warn({ err, path: ctx.path }, 'sandbox API handler failed');
        wxError(ctx, -1);
      }
    } finally {
      const meta = callMeta(ctx);
      rec.appId = meta.appId ?? appIdOf(ctx);
      rec.errcode = meta.errcode;
      const fault = (ctx.state as { sandboxFault?: CallRecord['fault'] }).sandboxFault;
      if (fault) rec.fault = fault;
    }
  }

  async function pageErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
    } catch (err) {
      if (isApiPath(ctx.path)) throw err;
      const status = err instanceof AppError ? err.status : err instanceof BodyTooLargeError ? 413 : 500;
      if (status === 500) logger.warn({ err, path: ctx.path }, 'sandbox page failed');
      const message = err instanceof AppError ? (err.publicMessage ?? err.code) : 'sandbox error';
      kit.render(ctx, 'error', { title: '出错了 / Something went wrong', message, detail: '' }, status);
    }
  }

  return {
    ...control,
    app,
    async close() {
      deps.scheduler.close();
      await deps.scheduler.idle();
    },
  };
}
