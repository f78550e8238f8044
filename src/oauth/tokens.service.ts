/**
 * The JWTs wxbridge issues (DESIGN.md "Tokens"): RFC 9068 access tokens (`typ: at+jwt`,
 * aud = the merchant, pairwise sub, the binding claims) and OIDC ID tokens (aud = the
 * client, nonce). Verification of our own access tokens (merchant API, introspection,
 * userinfo, revocation) pins the algorithms of our published keys, the issuer and the
 * typ, and takes keys only from our own set by kid (RFC 8725 §3.1, §3.8, §3.10, §3.11).
 * ID tokens carry `at_hash` of the access token issued with them (OIDC Core §3.1.3.6 makes
 * it optional at the token endpoint; it ties the two together, also on refresh, §12.2).
 * Revocation of an access token is a row on its jti in PostgreSQL until it would expire anyway.
 */
import { createHash } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT, type JWTHeaderParameters } from 'jose';
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';
import { randomId } from '../security/secrets.ts';
import { InvalidToken } from './errors.ts';
import type { KeysService } from './keys.service.ts';

const accessClaimsSchema = z.object({
  iss: z.string(),
  sub: z.string().min(1),
  aud: z.string().min(1),
  client_id: z.string().min(1),
  scope: z.string().default(''),
  iat: z.number().int(),
  exp: z.number().int(),
  jti: z.string().min(1),
  auth_time: z.number().int().optional(),
  amr: z.array(z.string()).optional(),
  account: z.string().optional(),
  account_display: z.string().nullable().optional(),
  binding_id: z.string().optional(),
  openid: z.string().optional(),
  unionid: z.string().nullable().optional(),
});
export type AccessTokenClaims = z.infer<typeof accessClaimsSchema>;

export interface BindingClaims {
  id: string;
  accountId: string;
  accountDisplay: string | null;
}

export interface AccessTokenInput {
  merchantId: string;
  clientId: string;
  sub: string;
  scopes: readonly string[];
  ttlSeconds: number;
  /** Pre-chosen jti (the code exchange records it before signing, for replay revocation). */
  jti?: string;
  authTime?: number;
  amr?: readonly string[];
  binding?: BindingClaims;
  /** Only for merchants whose config sets exposeWeChatIds. */
  wechat?: { openid: string; unionid: string | null };
}

export interface IdTokenInput {
  clientId: string;
  sub: string;
  authTime: number;
  ttlSeconds: number;
  nonce?: string;
  profile?: { name?: string | null; picture?: string | null };
  /** The access token issued with this ID token, for `at_hash`. */
  accessToken?: string;
}

/**
 * OIDC Core §3.1.3.6: the left half of the hash of the access token's ASCII octets, with
 * the hash of the ID token's `alg` (SHA-256 for ES256; SHA-512 for EdDSA/Ed25519, as
 * OpenID's EdDSA clarification and node-oidc-provider use).
 */
export function atHash(accessToken: string, alg: string): string {
  const digest = createHash(alg === 'EdDSA' || alg === 'Ed25519' ? 'sha512' : 'sha256').update(accessToken, 'ascii').digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

export interface TokensService {
  readonly issuer: string;
  issueAccessToken(input: AccessTokenInput): Promise<{ token: string; claims: AccessTokenClaims }>;
  issueIdToken(input: IdTokenInput): Promise<string>;
  /** Signature, typ, issuer, expiry and required claims; audience is the caller's to check. */
  verifyAccessToken(token: string): Promise<AccessTokenClaims>;
  /**
   * An ID token of ours for `clientId`, given back as `id_token_hint` (OIDC Core §3.1.2.1):
   * its `sub`, or null when it is not one. Expiry is not held against it (a hint is usually
   * sent after the token expired), up to HINT_EXPIRED_MAX_S.
   */
  idTokenHintSubject(token: string, clientId: string): Promise<string | null>;
  revokeAccessToken(jti: string, exp: number): Promise<void>;
  isRevoked(jti: string): Promise<boolean>;
}

const REQUIRED = ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id'];

/** How long after its expiry an ID token is still taken as a hint: a month. */
const HINT_EXPIRED_MAX_S = 30 * 86_400;

/** Revocations live in PostgreSQL (migration 660): see the migration for why not in Redis. */
export function createTokensService(deps: { issuer: string; keys: KeysService; db: Queryable; now: () => number }): TokensService {
  const seconds = () => Math.floor(deps.now() / 1000);

  /** `extra` sees the algorithm of the key that signs (for `at_hash`). */
  async function sign(payload: Record<string, unknown>, typ: string, extra?: (alg: string) => Record<string, unknown>): Promise<string> {
    const key = deps.keys.signingKey();
    const header: JWTHeaderParameters = { alg: key.alg, kid: key.kid, typ };
    return new SignJWT({ ...payload, ...extra?.(key.alg) }).setProtectedHeader(header).sign(key.privateKey);
  }

  /** kid is only ever a map key; an unknown kid is a refusal, never a fetch. */
  const ourKey = (header: JWTHeaderParameters) => {
    const k = header.kid === undefined ? undefined : deps.keys.publicKey(header.kid);
    if (!k || k.alg !== header.alg) throw new joseErrors.JWKSNoMatchingKey();
    return k.key;
  };

  return {
    issuer: deps.issuer,

    async issueAccessToken(input) {
      const iat = seconds();
      const claims: AccessTokenClaims = {
        iss: deps.issuer,
        sub: input.sub,
        aud: input.merchantId,
        client_id: input.clientId,
        scope: input.scopes.join(' '),
        iat,
        exp: iat + input.ttlSeconds,
        jti: input.jti ?? randomId(16),
        ...(input.authTime !== undefined ? { auth_time: input.authTime } : {}),
        ...(input.amr ? { amr: [...input.amr] } : {}),
        ...(input.binding ? { account: input.binding.accountId, account_display: input.binding.accountDisplay, binding_id: input.binding.id } : {}),
        ...(input.wechat ? { openid: input.wechat.openid, unionid: input.wechat.unionid } : {}),
      };
      return { token: await sign(claims, 'at+jwt'), claims };
    },

    async issueIdToken(input) {
      const iat = seconds();
      return sign(
        {
          iss: deps.issuer,
          sub: input.sub,
          aud: input.clientId,
          iat,
          exp: iat + input.ttlSeconds,
          auth_time: input.authTime,
          ...(input.nonce !== undefined ? { nonce: input.nonce } : {}),
          ...(input.profile?.name ? { name: input.profile.name } : {}),
          ...(input.profile?.picture ? { picture: input.profile.picture } : {}),
        },
        'JWT',
        input.accessToken === undefined ? undefined : (alg) => ({ at_hash: atHash(input.accessToken as string, alg) }),
      );
    },

    async verifyAccessToken(token) {
      let payload: unknown;
      try {
        ({ payload } = await jwtVerify(token, ourKey, {
          algorithms: [...deps.keys.algorithms()],
          issuer: deps.issuer,
          typ: 'at+jwt',
          requiredClaims: REQUIRED,
          currentDate: new Date(deps.now()),
        }));
      } catch (err) {
        throw new InvalidToken(undefined, { detail: { reason: err instanceof joseErrors.JOSEError ? err.code : 'malformed' } });
      }
      const parsed = accessClaimsSchema.safeParse(payload);
      if (!parsed.success) throw new InvalidToken(undefined, { detail: { reason: 'claims' } });
      return parsed.data;
    },

    async idTokenHintSubject(token, clientId) {
      try {
        const { payload } = await jwtVerify(token, ourKey, {
          algorithms: [...deps.keys.algorithms()],
          issuer: deps.issuer,
          audience: clientId,
          typ: 'JWT',
          requiredClaims: ['sub', 'iat', 'exp'],
          currentDate: new Date(deps.now()),
          clockTolerance: HINT_EXPIRED_MAX_S,
        });
        return typeof payload.sub === 'string' ? payload.sub : null;
      } catch {
        return null;
      }
    },

    async revokeAccessToken(jti, exp) {
      if (exp * 1000 <= deps.now()) return;
      await deps.db.query(
        `INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, to_timestamp($2)) ON CONFLICT (jti) DO NOTHING`,
        [jti, exp + 1],
      );
      await deps.db.query(
        `DELETE FROM revoked_access_tokens WHERE jti IN (SELECT jti FROM revoked_access_tokens WHERE expires_at < to_timestamp($1) LIMIT 100)`,
        [seconds()],
      );
    },

    async isRevoked(jti) {
      const { rows } = await deps.db.query(`SELECT 1 FROM revoked_access_tokens WHERE jti = $1 AND expires_at > to_timestamp($2)`, [jti, seconds()]);
      return rows.length > 0;
    },
  };
}
