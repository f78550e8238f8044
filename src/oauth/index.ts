/**
 * The authorization server feature (DESIGN.md "Tokens", routes /oauth2/* and
 * /.well-known/*). Wiring:
 *
 *   const oauth = createOAuthFeature({ ...core, linking: () => linkingFeature });
 *   features.push(oauth);
 *   await oauth.ready;                       // keys loaded, client secrets hashed
 *   oauth.merchantAuth.require('bindings:read')   // for /api/v1 routes
 *
 * `linking` may be given as the linking feature or as a function returning it, because
 * the linking feature's API routes need `merchantAuth` from here while /oauth2/authorize
 * needs linking only at request time.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { CoreDeps } from '../deps.ts';
import { DependencyUnavailableError } from '../http/errors.ts';
import type { Feature } from '../http/feature.ts';
import type { EndUserSession, LinkingService } from '../linking/types.ts';
import { createAuthorizeRoutes } from './authorize.routes.ts';
import { createAuthorizeService } from './authorize.service.ts';
import { createClientAuth } from './client-auth.ts';
import { createClientRegistry, type ClientRegistry } from './clients.ts';
import { createCodesService } from './codes.service.ts';
import { createDiscoveryRoutes } from './discovery.routes.ts';
import { createGrants } from './grants.service.ts';
import { createInspector } from './inspect.service.ts';
import { createKeysService, type KeyAlg, type KeysService } from './keys.service.ts';
import { createMerchantAuth, type MerchantAuth } from './merchant-auth.ts';
import { defaultPolicy, type OAuthPolicy } from './policy.ts';
import { createRefreshService } from './refresh.service.ts';
import { createTokenRoutes } from './token.routes.ts';
import { createTokensService, type TokensService } from './tokens.service.ts';

export type { MerchantAuth, MerchantAuthState } from './merchant-auth.ts';
export type { KeysService } from './keys.service.ts';
export type { TokensService, AccessTokenClaims } from './tokens.service.ts';

/** What the authorization server needs of the linking feature. */
export interface LinkingPort {
  readonly service: LinkingService;
  readonly sessions: { read(ctx: Context): EndUserSession | null | Promise<EndUserSession | null> };
}

export interface OAuthFeatureDeps extends CoreDeps {
  linking: LinkingPort | (() => LinkingPort | undefined);
  policy?: Partial<OAuthPolicy>;
  /** Algorithm of newly made keys: ES256 unless EdDSA is chosen. */
  keyAlg?: KeyAlg;
}

export interface OAuthFeature extends Feature {
  readonly keys: KeysService;
  readonly tokens: TokensService;
  readonly clients: ClientRegistry;
  readonly merchantAuth: MerchantAuth;
  /** Settles when keys are loaded and secrets hashed; routes wait for it by themselves. */
  readonly ready: Promise<void>;
}

export function createOAuthFeature(deps: OAuthFeatureDeps): OAuthFeature {
  const policy: OAuthPolicy = { ...defaultPolicy, ...deps.policy };
  const issuer = deps.config.publicUrl;
  const keys = createKeysService({ db: deps.db, secrets: deps.secrets, log: deps.log, now: deps.now, policy, defaultAlg: deps.keyAlg });
  const tokens = createTokensService({ issuer, keys, db: deps.db, now: deps.now });
  // Admin-made clients are read from the database, each cached 2 s (see clients.ts).
  const clients = createClientRegistry(deps.config.merchants, { db: deps.db, now: deps.now });
  const ready = keys.start().then(() => undefined);
  // Marked handled here; whoever awaits `ready` (deps.ts, the routes) still sees a failure.
  ready.catch(() => undefined);

  const auth = createMerchantAuth({ tokens, clients });
  const merchantAuth: MerchantAuth = {
    authenticate: async (h, s) => {
      await ready;
      return auth.authenticate(h, s);
    },
    require: (scope) => {
      const mw = auth.require(scope);
      return async (ctx, next) => {
        await ready;
        return mw(ctx, next);
      };
    },
  };

  const linking = (): LinkingPort => {
    const l = typeof deps.linking === 'function' ? deps.linking() : deps.linking;
    // The authorize journey and binding checks need linking; without it, fail closed.
    if (!l) throw new DependencyUnavailableError('db', new Error('the linking feature is not wired'));
    return l;
  };
  const linkingService = () => linking().service;
  const codes = createCodesService({ kv: deps.kv, now: deps.now });
  const refresh = createRefreshService({ db: deps.db, tokens, now: deps.now, policy, log: deps.log });
  const clientAuth = createClientAuth({ clients, kv: deps.kv, issuer, now: deps.now, policy });
  const grants = createGrants({ tokens, codes, refresh, clients, linking: linkingService, now: deps.now, log: deps.log });
  const authorize = createAuthorizeService({
    issuer,
    clients,
    codes,
    kv: deps.kv,
    linking: linkingService,
    officialAccounts: deps.config.officialAccounts,
    idTokenHintSubject: (token, clientId) => tokens.idTokenHintSubject(token, clientId),
    now: deps.now,
  });
  const inspector = createInspector({ tokens, refresh, linking: linkingService, merchant: (id) => clients.merchant(id), client: (id) => clients.get(id) });

  const router = new Router();
  router.use(async (_ctx, next) => {
    await ready;
    await next();
  });
  router.use(createDiscoveryRoutes({ issuer, keys, maxAgeSeconds: policy.jwksMaxAgeSeconds }).routes());
  router.use(createTokenRoutes({ issuer, clientAuth, grants, inspector }).routes());
  router.use(createAuthorizeRoutes({ authorize, sessions: () => linking().sessions, cookies: deps.cookies, csrf: deps.csrf, views: deps.views }).routes());

  return {
    name: 'oauth',
    routes: router,
    keys,
    tokens,
    clients,
    merchantAuth,
    ready,
    async stop() {
      keys.stop();
    },
  };
}
