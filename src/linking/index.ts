/**
 * The linking feature (issue 4): WeChat login for end users, identities, bindings with their
 * three proof methods, the "my linked accounts" pages, the merchant API for bindings and
 * binding codes, and the hash-chained audit log. Built once in `src/deps.ts`:
 *
 *   const linking = createLinkingFeature({ ...core, wechat, requireScope: oauth.merchantAuth.require });
 *   linking.service   // LinkingService + link/redeem/audit for other features
 *   linking.sessions.read(ctx)  // the end user's session, for /oauth2/authorize
 */
import type { Context, Middleware } from 'koa';
import Router from '@koa/router';
import type { CoreDeps } from '../deps.ts';
import { OAuthError } from '../http/errors.ts';
import type { Feature } from '../http/feature.ts';
import { ttl } from '../store/keyspace.ts';
import type { QrCodeApi, WebAuthClient } from '../wechat/index.ts';
import { createAccountsRoutes, type LinkContextDeps } from './accounts.routes.ts';
import { verifyAuditChain, type ChainReport } from './audit.queries.ts';
import { createBindingCodesService, type BindingCodesService } from './binding-codes.service.ts';
import { createBindingsApiRoutes } from './bindings-api.routes.ts';
import { createBindingsService, type BindingsService } from './bindings.service.ts';
import { createCodeRoutes } from './code.routes.ts';
import { createLoginFlowService, type LoginFlowService } from './login-flow.service.ts';
import { createLoginRoutes } from './login.routes.ts';
import { createOidcConnector } from './oidc.connector.ts';
import { createOidcRoutes } from './oidc.routes.ts';
import { createSessionsService } from './sessions.service.ts';
import type { EndUserSession } from './types.ts';
import { createVerifyApiService, type VerifyApiService } from './verify-api.service.ts';
import { createVerifyRoutes } from './verify.routes.ts';
import { createWebSession } from './web-session.routes.ts';

export type * from './types.ts';
export { verifyAuditChain } from './audit.queries.ts';

export interface LinkingFeatureDeps extends CoreDeps {
  wechat: { webAuth: WebAuthClient; api: QrCodeApi };
  /** Merchant API auth (`oauth.merchantAuth.require`); without it /api/v1 refuses every call. */
  requireScope?: (scope: string) => Middleware;
  /** How long a duplicate WeChat callback waits for the first (tests shorten it). */
  duplicateWaitMs?: number;
}

export interface LinkingFeatureService extends BindingsService, BindingCodesService {
  verifyApi: VerifyApiService;
  loginFlow: LoginFlowService;
  /** Re-computes the audit log's hash chain. */
  verifyAuditChain(): Promise<ChainReport>;
}

export interface LinkingFeature extends Feature {
  readonly service: LinkingFeatureService;
  readonly sessions: { read(ctx: Context): Promise<EndUserSession | null> };
}

const refuseAll = (): Middleware => () => {
  throw new OAuthError('invalid_token', 'merchant API authentication is not configured');
};

export function createLinkingFeature(deps: LinkingFeatureDeps): LinkingFeature {
  const merchant = (id: string) => deps.config.merchants.find((m) => m.id === id);
  const bindings = createBindingsService({ db: deps.db, log: deps.log, now: deps.now, merchant });
  const codes = createBindingCodesService({
    db: deps.db,
    kv: deps.kv,
    config: deps.config,
    merchant,
    bindings,
    qr: deps.wechat.api,
    codeKey: deps.secrets.deriveKey('binding-code'),
    now: deps.now,
  });
  const sessions = createSessionsService({ kv: deps.kv });
  const web = createWebSession({ cookies: deps.cookies, sessions, sessionMaxAgeMs: ttl.session });
  const loginFlow = createLoginFlowService({
    config: deps.config,
    merchant,
    kv: deps.kv,
    webAuth: deps.wechat.webAuth,
    bindings,
    sessions,
    log: deps.log.child({ feature: 'linking' }),
    now: deps.now,
    duplicateWaitMs: deps.duplicateWaitMs,
  });
  const verifyApi = createVerifyApiService({ kv: deps.kv, fetch: deps.fetch, merchant, bindings, accountKey: deps.secrets.deriveKey('verify-account'), now: deps.now });
  const oidc = createOidcConnector({ fetch: deps.fetch });

  const ctxDeps: LinkContextDeps = { views: deps.views, csrf: deps.csrf, merchant, loginFlow, web, bindings };
  const router = new Router();
  for (const r of [
    createLoginRoutes({ config: deps.config, views: deps.views, merchant, loginFlow, web }),
    createAccountsRoutes(ctxDeps),
    createVerifyRoutes({ ...ctxDeps, verify: verifyApi }),
    createOidcRoutes({ ...ctxDeps, config: deps.config, kv: deps.kv, oidc }),
    createCodeRoutes({ ...ctxDeps, codes }),
    createBindingsApiRoutes({ bindings, codes, requireScope: deps.requireScope ?? refuseAll }),
  ]) {
    router.use(r.routes(), r.allowedMethods());
  }

  const service: LinkingFeatureService = {
    ...bindings,
    ...codes,
    verifyApi,
    loginFlow,
    verifyAuditChain: () => verifyAuditChain(deps.db),
  };
  return { name: 'linking', routes: router, service, sessions: { read: (ctx) => web.read(ctx) } };
}
