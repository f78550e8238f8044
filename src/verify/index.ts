/**
 * wxbridge/verify — verifies wxbridge tokens in a merchant backend (DESIGN.md "Tokens";
 * SECURITY.md A2, A3 §4, A4). Everything a verifier must pin is pinned: the algorithms
 * (asymmetric only: RFC 8725 §3.1), the issuer (§3.8), the audience (§3.9), the token type
 * (`at+jwt` vs an ID token's `JWT`: §3.11, §3.12), and the claims RFC 9068 §2.2 requires.
 * Keys come only from the configured JWKS URL through jose's createRemoteJWKSet (cached,
 * refetched on an unknown kid at most once per cooldown); `jku`, `x5u` and `jwk` headers
 * are never followed (§3.10). Failures are jose errors: branch on their stable `code`.
 *
 *   import { createVerifier } from 'wxbridge/verify';
 *   const wx = createVerifier({ issuer: 'https://bridge.bank.example', audience: 'card' });
 *   const claims = await wx.verifyAccessToken(bearer);   // claims.account, claims.sub, …
 */
import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type RemoteJWKSetOptions } from 'jose';

export type WxbridgeAlgorithm = 'ES256' | 'EdDSA';

export interface VerifierOptions {
  /** wxbridge's PUBLIC_URL, exactly as in its discovery document's `issuer`. */
  issuer: string;
  /** Your merchant id: access tokens are issued with `aud` = the merchant. */
  audience: string;
  /** Defaults to `${issuer}/.well-known/jwks.json`. */
  jwksUri?: string;
  /** Defaults to both algorithms wxbridge can sign with (never HMAC, never none). */
  algorithms?: WxbridgeAlgorithm[];
  /** Seconds of clock skew tolerated on exp/iat/nbf. Default 0. */
  clockTolerance?: number;
  /** Passed to createRemoteJWKSet (timeoutDuration, cooldownDuration, cacheMaxAge, …); its defaults are sound. */
  jwks?: RemoteJWKSetOptions;
  /** Instead of a remote JWKS: any key resolver (tests, a pre-fetched set). */
  keys?: JWTVerifyGetKey;
}

/** RFC 9068 §2.2 claims plus wxbridge's binding claims (DESIGN.md "Tokens"). */
export interface WxbridgeAccessToken extends JWTPayload {
  iss: string;
  sub: string;
  aud: string;
  client_id: string;
  scope: string;
  iat: number;
  exp: number;
  jti: string;
  auth_time?: number;
  amr?: string[];
  /** The merchant's account id this WeChat user is linked to (user tokens only). */
  account?: string;
  account_display?: string | null;
  binding_id?: string;
  /** Only for merchants configured with exposeWeChatIds. */
  openid?: string;
  unionid?: string | null;
}

export interface WxbridgeIdToken extends JWTPayload {
  iss: string;
  sub: string;
  aud: string;
  iat: number;
  exp: number;
  auth_time: number;
  nonce?: string;
  name?: string;
  picture?: string;
}

export interface Verifier {
  /** An RFC 9068 access token for this merchant. */
  verifyAccessToken(token: string): Promise<WxbridgeAccessToken>;
  /** An OIDC ID token for one of your clients; pass the nonce you sent. */
  verifyIdToken(token: string, expected: { clientId: string; nonce?: string }): Promise<WxbridgeIdToken>;
  /** True when the access token's `scope` contains `scope`. */
  hasScope(claims: Pick<WxbridgeAccessToken, 'scope'>, scope: string): boolean;
}

export class IdTokenNonceMismatch extends Error {
  readonly code = 'ERR_WXBRIDGE_NONCE_MISMATCH';
  constructor() {
    super('the ID token nonce is not the one sent');
    this.name = 'IdTokenNonceMismatch';
  }
}

const ACCESS_REQUIRED = ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id'];
const ID_REQUIRED = ['iss', 'sub', 'aud', 'exp', 'iat', 'auth_time'];

export function createVerifier(opts: VerifierOptions): Verifier {
  const algorithms = opts.algorithms ?? ['ES256', 'EdDSA'];
  const keys = opts.keys ?? createRemoteJWKSet(new URL(opts.jwksUri ?? `${opts.issuer.replace(/\/+$/, '')}/.well-known/jwks.json`), opts.jwks);
  const base = { issuer: opts.issuer, algorithms, clockTolerance: opts.clockTolerance ?? 0 };

  return {
    async verifyAccessToken(token) {
      const { payload } = await jwtVerify(token, keys, { ...base, audience: opts.audience, typ: 'at+jwt', requiredClaims: ACCESS_REQUIRED });
      return payload as WxbridgeAccessToken;
    },
    async verifyIdToken(token, expected) {
      const { payload } = await jwtVerify(token, keys, { ...base, audience: expected.clientId, typ: 'JWT', requiredClaims: ID_REQUIRED });
      if (expected.nonce !== undefined && payload.nonce !== expected.nonce) throw new IdTokenNonceMismatch();
      return payload as WxbridgeIdToken;
    },
    hasScope: (claims, scope) => claims.scope.split(' ').includes(scope),
  };
}
