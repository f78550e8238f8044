/**
 * Bearer authentication of the merchant API (DESIGN.md "Merchant API"; RFC 6750, RFC 9068
 * §4). Accepts only our own client_credentials access tokens: at+jwt from our keys and
 * issuer, sub = client_id and no binding (a user's token is not a backend credential),
 * aud = the merchant that owns the client, not revoked, and the client still registered
 * for client_credentials. Scopes are intersected with the client's current scopes, so a
 * scope taken away in the config stops working at once (ASVS 8.3.2).
 *
 *   router.get('/api/v1/bindings', merchantAuth.require('bindings:read'), handler)
 *   // then ctx.state.merchantAuth = { merchantId, clientId, scopes }
 */
import type { Middleware } from 'koa';
import { bearerToken } from './bearer.ts';
import type { ClientRegistry } from './clients.ts';
import { InsufficientScope, InvalidBearerRequest, InvalidToken } from './errors.ts';
import type { TokensService } from './tokens.service.ts';

export interface MerchantAuthState {
  merchantId: string;
  clientId: string;
  scopes: string[];
}

declare module 'koa' {
  interface DefaultState {
    merchantAuth?: MerchantAuthState;
  }
}

export interface MerchantAuth {
  /** Middleware: a valid merchant Bearer token carrying `scope`, or 401/403 in RFC 6750 form. */
  require(scope: string): Middleware;
  /** The same check, transport-free: for callers that hold the header value. */
  authenticate(authorization: string | undefined, scope: string): Promise<MerchantAuthState>;
}

export interface MerchantAuthDeps {
  tokens: Pick<TokensService, 'verifyAccessToken' | 'isRevoked'>;
  clients: Pick<ClientRegistry, 'get'>;
}

export function createMerchantAuth(deps: MerchantAuthDeps): MerchantAuth {
  async function authenticate(authorization: string | undefined, scope: string): Promise<MerchantAuthState> {
    if (!authorization) throw new InvalidToken('a Bearer access token from the client_credentials grant is required', { bare: true });
    const token = bearerToken(authorization);
    if (!token) throw new InvalidToken('the Authorization header must be "Bearer <token>"');
    const claims = await deps.tokens.verifyAccessToken(token);
    const client = await deps.clients.get(claims.client_id);
    if (claims.binding_id !== undefined || claims.sub !== claims.client_id)
      throw new InvalidToken('an end-user access token cannot call the merchant API', { detail: { reason: 'user_token' } });
    if (!client || client.merchantId !== claims.aud || !client.grantTypes.includes('client_credentials'))
      throw new InvalidToken(undefined, { detail: { reason: 'client' } });
    if (await deps.tokens.isRevoked(claims.jti)) throw new InvalidToken(undefined, { detail: { reason: 'revoked' } });
    const scopes = claims.scope.split(' ').filter((s) => s && client.scopes.includes(s));
    if (!scopes.includes(scope)) throw new InsufficientScope(scope);
    return { merchantId: client.merchantId, clientId: client.clientId, scopes };
  }

  return {
    authenticate,
    require(scope) {
      return async (ctx, next) => {
        // RFC 6750 §2.3 / RFC 9700 §4.3.2: never take a token from the URL.
        if (ctx.query.access_token !== undefined) throw new InvalidBearerRequest('send the access token in the Authorization header, not the URL');
        ctx.state.merchantAuth = await authenticate(ctx.get('authorization') || undefined, scope);
        await next();
      };
    },
  };
}
