/**
 * The token endpoint's grants (RFC 6749 §4.1.3, §4.4, §6; RFC 7636 §4.6), transport-free.
 * The code exchange checks in node-oidc-provider's order — the code's client, expiry,
 * PKCE, exact redirect_uri — and only then consumes the code, so a wrong verifier does
 * not burn it; a consumed code presented again revokes what it issued (RFC 6749 §4.1.2,
 * RFC 9700 §4.2.4). Refresh and code grants re-read the binding: an unbinding stops them
 * at once.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { merchantScopes } from '../config/schema.ts';
import type { LinkingService } from '../linking/types.ts';
import { randomId, safeEqual } from '../security/secrets.ts';
import type { Client, ClientRegistry } from './clients.ts';
import type { CodesService, UsedCode } from './codes.service.ts';
import { InvalidGrant, InvalidRequest, InvalidScope, UnauthorizedClient } from './errors.ts';
import { activeBinding, issueUserTokens, type IssuedUserTokens } from './issue.ts';
import type { Params } from './params.ts';
import type { RefreshService } from './refresh.service.ts';
import type { TokensService } from './tokens.service.ts';

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
  id_token?: string;
  refresh_token?: string;
}

export const tokenParams = ['grant_type', 'code', 'redirect_uri', 'code_verifier', 'refresh_token', 'scope'] as const;
type TokenParams = Params<(typeof tokenParams)[number]>;

export interface GrantsDeps {
  tokens: TokensService;
  codes: CodesService;
  refresh: RefreshService;
  clients: ClientRegistry;
  linking: () => LinkingService;
  now: () => number;
  log: Logger;
}

const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');
const splitScope = (s: string | undefined) => (s ?? '').split(' ').filter(Boolean);

/** RFC 6749 §5.1, with the ID token when one was issued (OIDC Core §3.1.3.3, §12.2). */
function tokenResponse(issued: IssuedUserTokens, refreshToken: string | undefined): TokenResponse {
  return {
    access_token: issued.accessToken,
    token_type: 'Bearer',
    expires_in: issued.claims.exp - issued.claims.iat,
    scope: issued.claims.scope,
    ...(issued.idToken ? { id_token: issued.idToken } : {}),
    ...(refreshToken ? { refresh_token: refreshToken } : {}),
  };
}

export function createGrants(deps: GrantsDeps) {
  const seconds = () => Math.floor(deps.now() / 1000);
  const allowed = (client: Client, grant: Client['grantTypes'][number]) => {
    if (!client.grantTypes.includes(grant)) throw new UnauthorizedClient(`this client may not use the ${grant} grant`);
  };
  const merchantOf = (client: Client) => {
    const m = deps.clients.merchant(client.merchantId);
    if (!m) throw new InvalidGrant(undefined, { reason: 'merchant_missing' });
    return m;
  };

  /** Revokes what a replayed code issued (RFC 6749 §4.1.2: SHOULD revoke). */
  async function revokeReplayed(code: string, used: UsedCode, clientId: string): Promise<void> {
    await deps.codes.markReplayed(code, used);
    await deps.tokens.revokeAccessToken(used.jti, used.exp);
    await deps.refresh.revoke(used.familyId, 'code_replayed');
    deps.log.warn({ clientId }, 'authorization code replayed: its tokens are revoked');
  }

  async function authorizationCode(client: Client, p: TokenParams): Promise<TokenResponse> {
    allowed(client, 'authorization_code');
    if (!p.code) throw new InvalidRequest('code is required');
    const record = await deps.codes.load(p.code);
    if (!record) {
      const used = await deps.codes.used(p.code);
      if (used) await revokeReplayed(p.code, used, client.clientId);
      throw new InvalidGrant();
    }
    if (record.clientId !== client.clientId) throw new InvalidGrant(undefined, { reason: 'other_client' });
    if (record.expiresAt <= deps.now()) throw new InvalidGrant(undefined, { reason: 'expired' });
    if (!p.code_verifier || !VERIFIER.test(p.code_verifier) || !safeEqual(s256(p.code_verifier), record.codeChallenge))
      throw new InvalidGrant('PKCE verification failed', { reason: 'pkce' });
    if (p.redirect_uri !== record.redirectUri) throw new InvalidGrant('redirect_uri does not match the authorization request', { reason: 'redirect_uri' });
    const accessExp = seconds() + client.accessTokenTtl;
    if (!(await deps.codes.consume(p.code, record, accessExp))) {
      const used = await deps.codes.used(p.code);
      if (used) await revokeReplayed(p.code, used, client.clientId);
      throw new InvalidGrant();
    }
    const linking = deps.linking();
    const binding = await activeBinding(linking, { bindingId: record.bindingId, merchantId: client.merchantId, identityId: record.identityId });
    if (!binding) throw new InvalidGrant('the linked account is no longer linked', { reason: 'binding' });
    const merchant = merchantOf(client);
    const issued = await issueUserTokens(
      { tokens: deps.tokens, linking },
      { client, merchant, binding, scopes: record.scopes, authTime: record.authTime, amr: record.amr, jti: record.jti, idToken: { nonce: record.nonce } },
    );
    let refreshToken: string | undefined;
    if (client.grantTypes.includes('refresh_token')) {
      refreshToken = await deps.refresh.startFamily(
        {
          id: record.familyId,
          clientId: client.clientId,
          merchantId: merchant.id,
          identityId: binding.identityId,
          bindingId: binding.id,
          scope: record.scopes.join(' '),
          authTime: new Date(record.authTime * 1000),
          amr: record.amr,
        },
        { jti: issued.claims.jti, exp: issued.claims.exp },
      );
      // A replay that raced this exchange flagged the code after we consumed it: the family
      // now exists, so revoking it here closes the window (the replay revoked the jti).
      if ((await deps.codes.used(p.code))?.replayed) {
        await deps.refresh.revoke(record.familyId, 'code_replayed');
        throw new InvalidGrant();
      }
    }
    return tokenResponse(issued, refreshToken);
  }

  async function refreshToken(client: Client, p: TokenParams): Promise<TokenResponse> {
    allowed(client, 'refresh_token');
    if (!p.refresh_token) throw new InvalidRequest('refresh_token is required');
    const found = await deps.refresh.find(p.refresh_token);
    if (!found || found.client_id !== client.clientId) throw new InvalidGrant();
    const problem = deps.refresh.problem(found);
    if (problem === 'used') {
      // RFC 9700 §4.14.2: a rotated token seen again means a copy leaked; end the family.
      await deps.refresh.revoke(found.family_id, 'reuse_detected');
      deps.log.warn({ clientId: client.clientId }, 'refresh token reuse detected');
    }
    if (problem) throw new InvalidGrant(undefined, { reason: problem });
    const granted = splitScope(found.scope);
    const scopes = p.scope === undefined ? granted : splitScope(p.scope);
    if (!scopes.every((s) => granted.includes(s))) throw new InvalidScope('a refresh may only narrow the granted scope (RFC 6749 §6)');
    const linking = deps.linking();
    const binding = await activeBinding(linking, { bindingId: found.binding_id, merchantId: client.merchantId, identityId: found.identity_id });
    if (!binding) {
      await deps.refresh.revoke(found.family_id, 'binding_revoked');
      throw new InvalidGrant('the linked account is no longer linked', { reason: 'binding' });
    }
    const jti = randomId(16);
    const next = await deps.refresh.rotate(found, { jti, exp: seconds() + client.accessTokenTtl });
    if (!next) {
      await deps.refresh.revoke(found.family_id, 'reuse_detected');
      throw new InvalidGrant(undefined, { reason: 'concurrent_reuse' });
    }
    const issued = await issueUserTokens(
      { tokens: deps.tokens, linking },
      // OIDC Core §12.2: a new ID token when openid was granted, without a nonce.
      { client, merchant: merchantOf(client), binding, scopes, authTime: Math.floor(found.auth_time.getTime() / 1000), amr: found.amr, jti, idToken: {} },
    );
    return tokenResponse(issued, next);
  }

  async function clientCredentials(client: Client, p: TokenParams): Promise<TokenResponse> {
    allowed(client, 'client_credentials');
    const grantable = client.scopes.filter((s) => (merchantScopes as readonly string[]).includes(s));
    const scopes = p.scope === undefined ? grantable : splitScope(p.scope);
    const refused = scopes.filter((s) => !grantable.includes(s));
    if (refused.length) throw new InvalidScope(`not granted to this client: ${refused.join(' ')}`);
    // RFC 9068 §2.2: with no resource owner, sub names the client.
    const { token, claims } = await deps.tokens.issueAccessToken({
      merchantId: client.merchantId,
      clientId: client.clientId,
      sub: client.clientId,
      scopes,
      ttlSeconds: client.accessTokenTtl,
    });
    return { access_token: token, token_type: 'Bearer', expires_in: claims.exp - claims.iat, scope: claims.scope };
  }

  return { authorizationCode, refreshToken, clientCredentials };
}

export type Grants = ReturnType<typeof createGrants>;
