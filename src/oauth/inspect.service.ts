/**
 * What a merchant may ask about a token: introspection (RFC 7662), revocation (RFC 7009)
 * and userinfo (OIDC Core §5.3). A merchant only ever learns about its own tokens: one of
 * another merchant introspects as inactive (RFC 7662 §2.2 allows hiding it), and only the
 * client a token was issued to may revoke it. Access tokens are inactive once revoked, once
 * their binding is revoked (DESIGN.md "Tokens": unbinding takes effect at once), and once the
 * client they were issued to is disabled or deleted (an admin cutting a client off cuts off
 * what it already holds); refresh tokens likewise.
 */
import type { MerchantConfig } from '../config/index.ts';
import type { LinkingService } from '../linking/types.ts';
import type { Client } from './clients.ts';
import { InsufficientScope, InvalidToken, UnauthorizedClient, UnsupportedTokenType } from './errors.ts';
import { activeBinding } from './issue.ts';
import type { RefreshService } from './refresh.service.ts';
import type { AccessTokenClaims, TokensService } from './tokens.service.ts';

export type Introspection = { active: false } | ({ active: true; token_type: 'Bearer' | 'refresh_token' } & Record<string, unknown>);

export const inspectParams = ['token', 'token_type_hint'] as const;

const looksLikeJwt = (t: string) => t.split('.').length === 3;

export function createInspector(deps: {
  tokens: TokensService;
  refresh: RefreshService;
  linking: () => LinkingService;
  merchant: (id: string) => MerchantConfig | undefined;
  /** The client as it is now: undefined once disabled or deleted. */
  client: (clientId: string) => Promise<Client | undefined>;
}) {
  /** Ours and well-formed (signature, typ, iss, exp), or null: callers answer "inactive", never an error. */
  const verified = (token: string): Promise<AccessTokenClaims | null> => deps.tokens.verifyAccessToken(token).catch(() => null);

  /** Signature-valid, unexpired, not revoked, and (for user tokens) its binding still active. */
  async function liveAccessToken(token: string): Promise<AccessTokenClaims | null> {
    const claims = await verified(token);
    if (!claims || (await deps.tokens.isRevoked(claims.jti))) return null;
    if (!(await deps.client(claims.client_id))) return null;
    if (claims.binding_id !== undefined) {
      const b = await deps.linking().getBinding(claims.binding_id);
      if (!b || b.status !== 'active' || b.merchantId !== claims.aud) return null;
    }
    return claims;
  }

  function checkHint(hint: string | undefined): void {
    if (hint !== undefined && hint !== 'access_token' && hint !== 'refresh_token') throw new UnsupportedTokenType();
  }

  return {
    async introspect(client: Client, token: string, hint?: string): Promise<Introspection> {
      checkHint(hint);
      if (looksLikeJwt(token)) {
        const c = await liveAccessToken(token);
        if (!c || c.aud !== client.merchantId) return { active: false };
        return { active: true, token_type: 'Bearer', ...c };
      }
      const found = await deps.refresh.find(token);
      if (!found || found.merchant_id !== client.merchantId || deps.refresh.problem(found)) return { active: false };
      // A disabled or deleted client can no longer authenticate to use it: not active either.
      if (!(await deps.client(found.client_id))) return { active: false };
      const linking = deps.linking();
      if (!(await activeBinding(linking, { bindingId: found.binding_id, merchantId: found.merchant_id, identityId: found.identity_id }))) return { active: false };
      return {
        active: true,
        token_type: 'refresh_token',
        client_id: found.client_id,
        scope: found.scope,
        sub: await linking.subjectFor(found.identity_id, found.merchant_id),
        aud: found.merchant_id,
        binding_id: found.binding_id,
        iat: Math.floor(found.created_at.getTime() / 1000),
        exp: Math.floor(found.expires_at.getTime() / 1000),
      };
    },

    /** RFC 7009 §2.2: unknown and invalid tokens are a success too. */
    async revoke(client: Client, token: string, hint?: string): Promise<void> {
      checkHint(hint);
      if (looksLikeJwt(token)) {
        const claims = await verified(token);
        if (!claims) return;
        if (claims.client_id !== client.clientId) throw new UnauthorizedClient('this token was not issued to you');
        await deps.tokens.revokeAccessToken(claims.jti, claims.exp);
        return;
      }
      const found = await deps.refresh.find(token);
      if (!found) return;
      if (found.client_id !== client.clientId) throw new UnauthorizedClient('this token was not issued to you');
      await deps.refresh.revoke(found.family_id, 'revoked_by_client');
    },

    /** OIDC Core §5.3: needs an end user's access token with the openid scope. */
    async userinfo(token: string): Promise<Record<string, unknown>> {
      const c = await liveAccessToken(token);
      if (!c || c.binding_id === undefined) throw new InvalidToken();
      if (!c.scope.split(' ').includes('openid')) throw new InsufficientScope('openid');
      const info: Record<string, unknown> = { sub: c.sub, account: c.account, account_display: c.account_display, binding_id: c.binding_id };
      if (c.scope.split(' ').includes('profile') && deps.merchant(c.aud)?.profile === 'userinfo') {
        const linking = deps.linking();
        const b = await linking.getBinding(c.binding_id);
        const identity = b ? await linking.getIdentity(b.identityId) : null;
        if (identity?.nickname) info.name = identity.nickname;
        if (identity?.avatarUrl) info.picture = identity.avatarUrl;
      }
      return info;
    },
  };
}

export type Inspector = ReturnType<typeof createInspector>;
