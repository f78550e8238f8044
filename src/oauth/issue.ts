/**
 * What an end user's grant turns into (DESIGN.md "Tokens"): an RFC 9068 access token for
 * the merchant with the pairwise sub and the binding claims, and an ID token for the
 * client when `openid` was granted. WeChat ids only for merchants that allow them;
 * name/picture only with `profile: userinfo` and the `profile` scope.
 */
import type { MerchantConfig } from '../config/index.ts';
import type { Binding, LinkingService } from '../linking/types.ts';
import type { Client } from './clients.ts';
import type { AccessTokenClaims, TokensService } from './tokens.service.ts';

export interface UserGrant {
  client: Client;
  merchant: MerchantConfig;
  binding: Binding;
  scopes: readonly string[];
  authTime: number;
  amr: readonly string[];
  jti: string;
  /**
   * Asks for an ID token (when `openid` was granted): at the code exchange with its nonce,
   * and on refresh without one (OIDC Core §12.2: same iss/sub/aud, the original auth_time).
   */
  idToken?: { nonce?: string };
}

export interface IssuedUserTokens {
  accessToken: string;
  claims: AccessTokenClaims;
  idToken?: string;
}

/** The active binding with this id, of this merchant and identity; null otherwise. */
export async function activeBinding(linking: LinkingService, p: { bindingId: string; merchantId: string; identityId: string }): Promise<Binding | null> {
  const b = await linking.getBinding(p.bindingId);
  return b && b.status === 'active' && b.merchantId === p.merchantId && b.identityId === p.identityId ? b : null;
}

export async function issueUserTokens(deps: { tokens: TokensService; linking: LinkingService }, g: UserGrant): Promise<IssuedUserTokens> {
  const { binding, merchant, client } = g;
  const sub = await deps.linking.subjectFor(binding.identityId, merchant.id);
  const wantsProfile = g.idToken !== undefined && merchant.profile === 'userinfo' && g.scopes.includes('profile');
  const identity = merchant.exposeWeChatIds || wantsProfile ? await deps.linking.getIdentity(binding.identityId) : null;
  const { token, claims } = await deps.tokens.issueAccessToken({
    merchantId: merchant.id,
    clientId: client.clientId,
    sub,
    scopes: g.scopes,
    ttlSeconds: client.accessTokenTtl,
    jti: g.jti,
    authTime: g.authTime,
    amr: g.amr,
    binding: { id: binding.id, accountId: binding.accountId, accountDisplay: binding.accountDisplay },
    ...(merchant.exposeWeChatIds && identity ? { wechat: { openid: identity.openid, unionid: identity.unionid } } : {}),
  });
  if (!g.idToken || !g.scopes.includes('openid')) return { accessToken: token, claims };
  const idToken = await deps.tokens.issueIdToken({
    clientId: client.clientId,
    sub,
    authTime: g.authTime,
    ttlSeconds: client.accessTokenTtl,
    nonce: g.idToken.nonce,
    accessToken: token,
    ...(wantsProfile && identity ? { profile: { name: identity.nickname, picture: identity.avatarUrl } } : {}),
  });
  return { accessToken: token, claims, idToken };
}
