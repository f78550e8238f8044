/**
 * SQL of the signing_keys table. Every query takes a Queryable (pool or transaction);
 * times are passed in from the service's clock, never `now()`, so tests can move time.
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';

export const keyAlgs = ['ES256', 'EdDSA'] as const;
export type KeyAlg = (typeof keyAlgs)[number];
export type KeyState = 'next' | 'current' | 'previous';

const jwkSchema = z.record(z.string(), z.unknown());

/** Rows are validated on the way out: the JSONB column is a trust boundary too (STYLE rule 3). */
const keyRowSchema = z.object({
  kid: z.string(),
  alg: z.enum(keyAlgs),
  state: z.enum(['next', 'current', 'previous']),
  public_jwk: jwkSchema,
  private_key_sealed: z.string(),
  published_at: z.coerce.date(),
  activated_at: z.coerce.date().nullable(),
  retired_at: z.coerce.date().nullable(),
  remove_after: z.coerce.date().nullable(),
});
export type KeyRow = z.infer<typeof keyRowSchema>;

/** Arbitrary, constant: serialises key-table changes across instances and the CLI. */
const KEYS_LOCK = 7331000300;

export async function lockKeys(q: Queryable): Promise<void> {
  await q.query('SELECT pg_advisory_xact_lock($1)', [KEYS_LOCK]);
}

export async function listKeys(q: Queryable): Promise<KeyRow[]> {
  const r = await q.query(
    `SELECT kid, alg, state, public_jwk, private_key_sealed, published_at, activated_at, retired_at, remove_after
       FROM signing_keys ORDER BY published_at, kid`,
  );
  return r.rows.map((row) => keyRowSchema.parse(row));
}

/** A cheap fingerprint of the table: changes whenever a key is added, moved or removed. */
export async function keysFingerprint(q: Queryable): Promise<string> {
  const r = await q.query<{ f: string | null }>(
    `SELECT string_agg(kid || ':' || state || ':' || extract(epoch FROM updated_at)::text, ',' ORDER BY kid) AS f FROM signing_keys`,
  );
  return r.rows[0]?.f ?? '';
}

export async function insertKey(
  q: Queryable,
  k: { kid: string; alg: KeyAlg; state: KeyState; publicJwk: Record<string, unknown>; privateKeySealed: string; at: Date },
): Promise<void> {
  await q.query(
    `INSERT INTO signing_keys (kid, alg, state, public_jwk, private_key_sealed, published_at, activated_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $6)`,
    [k.kid, k.alg, k.state, JSON.stringify(k.publicJwk), k.privateKeySealed, k.at, k.state === 'current' ? k.at : null],
  );
}

export async function retireKey(q: Queryable, kid: string, at: Date, removeAfter: Date): Promise<void> {
  await q.query(`UPDATE signing_keys SET state = 'previous', retired_at = $2, remove_after = $3, updated_at = $2 WHERE kid = $1`, [kid, at, removeAfter]);
}

export async function activateKey(q: Queryable, kid: string, at: Date): Promise<void> {
  await q.query(`UPDATE signing_keys SET state = 'current', activated_at = $2, updated_at = $2 WHERE kid = $1 AND state = 'next'`, [kid, at]);
}

/**
 * Deletes a key unless it is the one signing or the last one left; the guard is in the
 * statement itself so no race between instances can ever empty the table.
 */
export async function deleteKey(q: Queryable, kid: string): Promise<boolean> {
  const r = await q.query(
    `DELETE FROM signing_keys WHERE kid = $1 AND state <> 'current' AND (SELECT count(*) FROM signing_keys) > 1 RETURNING kid`,
    [kid],
  );
  return r.rowCount > 0;
}

/** Emergency rotation only, inside the transaction that promotes the next key. */
export async function deleteCurrentKey(q: Queryable, kid: string): Promise<void> {
  await q.query(`DELETE FROM signing_keys WHERE kid = $1 AND state = 'current'`, [kid]);
}

/** Removes retired keys whose tokens have all expired. Never touches next or current. */
export async function pruneRetiredKeys(q: Queryable, at: Date): Promise<string[]> {
  const r = await q.query<{ kid: string }>(`DELETE FROM signing_keys WHERE state = 'previous' AND remove_after <= $1 RETURNING kid`, [at]);
  return r.rows.map((row) => row.kid);
}
