/**
 * Refresh tokens (RFC 6749 §6; RFC 9700 §4.14.2): opaque 256-bit values, stored as a
 * SHA-256, rotated on every use, grouped in a family per authorization. A token used
 * twice means one copy was stolen: the whole family is revoked, with the access tokens
 * it issued. Expiry is per token (refreshTokenTtlMs) and per family (refreshFamilyMaxMs).
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { randomId } from '../security/secrets.ts';
import type { Db } from '../store/db.ts';
import {
  findRefreshToken,
  insertFamily,
  insertRefreshToken,
  lockLiveFamily,
  markRefreshTokenUsed,
  revokeFamily,
  type FoundRefreshToken,
  type NewFamily,
} from './refresh.queries.ts';
import type { OAuthPolicy } from './policy.ts';
import type { TokensService } from './tokens.service.ts';

export type { FoundRefreshToken } from './refresh.queries.ts';

export interface IssuedAccess {
  jti: string;
  exp: number;
}

export interface RefreshService {
  /** A new family and its first token, recorded with the access token issued beside it. */
  startFamily(family: Omit<NewFamily, 'expiresAt' | 'createdAt'>, access: IssuedAccess): Promise<string>;
  find(token: string): Promise<FoundRefreshToken | null>;
  /** Uses `found` once and returns its successor; null when it was used already (reuse) or its family is revoked. */
  rotate(found: FoundRefreshToken, access: IssuedAccess): Promise<string | null>;
  /** Revokes the family and the access tokens it issued that are still alive. */
  revoke(familyId: string, reason: string): Promise<void>;
  /** Why a found token is no longer good, or null when it is. Binding status is checked apart. */
  problem(found: FoundRefreshToken): 'revoked' | 'used' | 'expired' | null;
}

export const hashRefreshToken = (token: string): string => createHash('sha256').update(token).digest('base64url');

/** Our refresh tokens are 43 base64url characters; anything else is not one (no DB lookup). */
export const looksLikeRefreshToken = (token: string): boolean => /^[A-Za-z0-9_-]{43}$/.test(token);

export function createRefreshService(deps: { db: Db; tokens: TokensService; now: () => number; policy: OAuthPolicy; log: Logger }): RefreshService {
  const at = () => new Date(deps.now());
  const tokenExpiry = (familyExpires: Date) => new Date(Math.min(deps.now() + deps.policy.refreshTokenTtlMs, familyExpires.getTime()));

  return {
    async startFamily(f, access) {
      const token = randomId(32);
      const createdAt = at();
      const expiresAt = new Date(createdAt.getTime() + deps.policy.refreshFamilyMaxMs);
      await deps.db.transaction(async (tx) => {
        await insertFamily(tx, { ...f, createdAt, expiresAt });
        await insertRefreshToken(tx, {
          familyId: f.id,
          tokenHash: hashRefreshToken(token),
          accessJti: access.jti,
          accessExpiresAt: new Date(access.exp * 1000),
          expiresAt: tokenExpiry(expiresAt),
          createdAt,
        });
      });
      return token;
    },

    find: (token) => (looksLikeRefreshToken(token) ? findRefreshToken(deps.db, hashRefreshToken(token)) : Promise.resolve(null)),

    async rotate(found, access) {
      const token = randomId(32);
      const now = at();
      const ok = await deps.db.transaction(async (tx) => {
        // `found` was read before this transaction: a revocation since then (a reuse racing
        // this refresh) must stop it, or the access token issued here would escape it.
        if (!(await lockLiveFamily(tx, found.family_id))) return false;
        if (!(await markRefreshTokenUsed(tx, found.id, now))) return false;
        await insertRefreshToken(tx, {
          familyId: found.family_id,
          tokenHash: hashRefreshToken(token),
          accessJti: access.jti,
          accessExpiresAt: new Date(access.exp * 1000),
          expiresAt: tokenExpiry(found.family_expires_at),
          createdAt: now,
        });
        return true;
      });
      return ok ? token : null;
    },

    async revoke(familyId, reason) {
      const live = await revokeFamily(deps.db, familyId, at(), reason);
      await Promise.all(live.map((a) => deps.tokens.revokeAccessToken(a.jti, Math.floor(a.exp.getTime() / 1000))));
      deps.log.info({ familyId, reason, accessTokensRevoked: live.length }, 'refresh token family revoked');
    },

    problem(found) {
      if (found.revoked_at) return 'revoked';
      if (found.used_at) return 'used';
      const now = deps.now();
      if (found.expires_at.getTime() <= now || found.family_expires_at.getTime() <= now) return 'expired';
      return null;
    },
  };
}
