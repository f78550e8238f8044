/**
 * SQL of refresh_token_families and refresh_tokens. Queries take a Queryable; times are
 * passed in from the service's clock.
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';

export interface NewFamily {
  id: string;
  clientId: string;
  merchantId: string;
  identityId: string;
  bindingId: string;
  scope: string;
  authTime: Date;
  amr: readonly string[];
  expiresAt: Date;
  createdAt: Date;
}

export interface NewRefreshToken {
  familyId: string;
  tokenHash: string;
  accessJti: string;
  accessExpiresAt: Date;
  expiresAt: Date;
  createdAt: Date;
}

const foundSchema = z.object({
  id: z.string(),
  family_id: z.string(),
  used_at: z.coerce.date().nullable(),
  expires_at: z.coerce.date(),
  created_at: z.coerce.date(),
  client_id: z.string(),
  merchant_id: z.string(),
  identity_id: z.string(),
  binding_id: z.string(),
  scope: z.string(),
  auth_time: z.coerce.date(),
  amr: z.array(z.string()),
  family_expires_at: z.coerce.date(),
  revoked_at: z.coerce.date().nullable(),
});
export type FoundRefreshToken = z.infer<typeof foundSchema>;

export async function insertFamily(q: Queryable, f: NewFamily): Promise<void> {
  await q.query(
    `INSERT INTO refresh_token_families (id, client_id, merchant_id, identity_id, binding_id, scope, auth_time, amr, expires_at, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [f.id, f.clientId, f.merchantId, f.identityId, f.bindingId, f.scope, f.authTime, [...f.amr], f.expiresAt, f.createdAt],
  );
}

export async function insertRefreshToken(q: Queryable, t: NewRefreshToken): Promise<void> {
  await q.query(
    `INSERT INTO refresh_tokens (family_id, token_hash, access_jti, access_expires_at, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
    [t.familyId, t.tokenHash, t.accessJti, t.accessExpiresAt, t.expiresAt, t.createdAt],
  );
}

export async function findRefreshToken(q: Queryable, tokenHash: string): Promise<FoundRefreshToken | null> {
  const r = await q.query(
    `SELECT t.id, t.family_id, t.used_at, t.expires_at, t.created_at, f.client_id, f.merchant_id, f.identity_id, f.binding_id,
            f.scope, f.auth_time, f.amr, f.expires_at AS family_expires_at, f.revoked_at
       FROM refresh_tokens t JOIN refresh_token_families f ON f.id = t.family_id
      WHERE t.token_hash = $1`,
    [tokenHash],
  );
  return r.rows[0] ? foundSchema.parse(r.rows[0]) : null;
}

/**
 * Locks the family row for the rest of the transaction if it is not revoked. A rotation
 * takes it first, so it and revokeFamily (whose UPDATE waits on the lock) are serialised:
 * either the rotation sees the revocation and stops, or the revocation sees the new
 * token's access jti and revokes it too.
 */
export async function lockLiveFamily(q: Queryable, familyId: string): Promise<boolean> {
  const r = await q.query(`SELECT 1 FROM refresh_token_families WHERE id = $1 AND revoked_at IS NULL FOR UPDATE`, [familyId]);
  return r.rows.length === 1;
}

/** Single use of a refresh token: only the first caller gets true. */
export async function markRefreshTokenUsed(q: Queryable, id: string, at: Date): Promise<boolean> {
  const r = await q.query(`UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL`, [id, at]);
  return r.rowCount === 1;
}

/**
 * Revokes a family and returns the access tokens it issued that are still alive, so the
 * caller can revoke those too (RFC 7009 §2.1). Idempotent; the first reason stays.
 */
export async function revokeFamily(q: Queryable, familyId: string, at: Date, reason: string): Promise<{ jti: string; exp: Date }[]> {
  await q.query(`UPDATE refresh_token_families SET revoked_at = $2, revoke_reason = $3 WHERE id = $1 AND revoked_at IS NULL`, [familyId, at, reason]);
  const r = await q.query<{ access_jti: string; access_expires_at: Date | string }>(
    `SELECT access_jti, access_expires_at FROM refresh_tokens WHERE family_id = $1 AND access_expires_at > $2`,
    [familyId, at],
  );
  return r.rows.map((row) => ({ jti: row.access_jti, exp: new Date(row.access_expires_at) }));
}
