/**
 * SQL for bindings (identity ↔ merchant account, many to many). The policy is enforced by
 * the partial unique indexes of migration 200 under concurrency: one active link of an
 * account per user, one user per account when `exclusive`, one default per user.
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';
import { date, isUuid } from '../store/rows.ts';
import type { Binding, ProofMethod } from './types.ts';

/** A bindings row as stored; the admin's reads extend it with the identity's columns. */
export const bindingRow = z.object({
  id: z.string(),
  merchant_id: z.string(),
  identity_id: z.string(),
  account_id: z.string(),
  account_display: z.string().nullable(),
  status: z.enum(['active', 'revoked']),
  is_default: z.boolean(),
  proof: z.enum(['oidc', 'verify-api', 'binding-code', 'admin', 'import']),
  proven_at: date,
  created_by: z.string(),
  revoked_at: date.nullable(),
  revoke_reason: z.string().nullable(),
  created_at: date,
});

const COLUMNS =
  'id, merchant_id, identity_id, account_id, account_display, status, is_default, proof, proven_at, created_by, revoked_at, revoke_reason, created_at';

export function toBinding(row: unknown): Binding {
  const r = bindingRow.parse(row);
  return {
    id: r.id,
    merchantId: r.merchant_id,
    identityId: r.identity_id,
    accountId: r.account_id,
    accountDisplay: r.account_display,
    status: r.status,
    isDefault: r.is_default,
    proof: r.proof,
    provenAt: r.proven_at,
    createdBy: r.created_by,
    revokedAt: r.revoked_at,
    revokeReason: r.revoke_reason,
    createdAt: r.created_at,
  };
}

export async function findBindingById(q: Queryable, id: string): Promise<Binding | null> {
  if (!isUuid(id)) return null;
  const r = await q.query(`SELECT ${COLUMNS} FROM bindings WHERE id = $1`, [id]);
  return r.rows[0] ? toBinding(r.rows[0]) : null;
}

export interface BindingFilter {
  merchantId: string;
  identityId?: string;
  accountId?: string;
  status?: 'active' | 'revoked';
}

/** Active first, default first, then oldest first: the order the user's page shows. */
export async function listBindings(q: Queryable, f: BindingFilter): Promise<Binding[]> {
  if (f.identityId !== undefined && !isUuid(f.identityId)) return [];
  const where = ['merchant_id = $1'];
  const params: unknown[] = [f.merchantId];
  if (f.identityId !== undefined) where.push(`identity_id = $${params.push(f.identityId)}`);
  if (f.accountId !== undefined) where.push(`account_id = $${params.push(f.accountId)}`);
  if (f.status !== undefined) where.push(`status = $${params.push(f.status)}`);
  const r = await q.query(
    `SELECT ${COLUMNS} FROM bindings WHERE ${where.join(' AND ')}
      ORDER BY status = 'active' DESC, is_default DESC, created_at, id LIMIT 500`,
    params,
  );
  return r.rows.map(toBinding);
}

export async function countActiveBindings(q: Queryable, merchantId: string, identityId: string): Promise<{ total: number; defaults: number }> {
  const r = await q.query<{ total: number | string; defaults: number | string }>(
    `SELECT count(*) AS total, count(*) FILTER (WHERE is_default) AS defaults
       FROM bindings WHERE merchant_id = $1 AND identity_id = $2 AND status = 'active'`,
    [merchantId, identityId],
  );
  return { total: Number(r.rows[0]?.total ?? 0), defaults: Number(r.rows[0]?.defaults ?? 0) };
}

export interface NewBinding {
  merchantId: string;
  identityId: string;
  accountId: string;
  accountDisplay: string | null;
  exclusive: boolean;
  isDefault: boolean;
  proof: ProofMethod;
  createdBy: string;
  at: Date;
}

/** Null when a partial unique index refused it (already linked, or exclusive and taken). */
export async function insertBinding(q: Queryable, b: NewBinding): Promise<Binding | null> {
  const r = await q.query(
    `INSERT INTO bindings (merchant_id, identity_id, account_id, account_display, exclusive, is_default, proof, proven_at, created_by, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $8)
     ON CONFLICT DO NOTHING
     RETURNING ${COLUMNS}`,
    [b.merchantId, b.identityId, b.accountId, b.accountDisplay, b.exclusive, b.isDefault, b.proof, b.at.toISOString(), b.createdBy],
  );
  return r.rows[0] ? toBinding(r.rows[0]) : null;
}

export async function revokeBindingRow(
  q: Queryable,
  p: { id: string; merchantId: string; actor: string; reason: string; at: Date },
): Promise<Binding | null> {
  if (!isUuid(p.id)) return null;
  const r = await q.query(
    `UPDATE bindings SET status = 'revoked', is_default = false, revoked_at = $3, revoked_by = $4, revoke_reason = $5, updated_at = $3
      WHERE id = $1 AND merchant_id = $2 AND status = 'active'
      RETURNING ${COLUMNS}`,
    [p.id, p.merchantId, p.at.toISOString(), p.actor, p.reason],
  );
  return r.rows[0] ? toBinding(r.rows[0]) : null;
}

/** Makes `bindingId` the user's one default: clear first, then set (the unique index sees one at a time). */
export async function setDefaultBinding(q: Queryable, p: { merchantId: string; identityId: string; bindingId: string }): Promise<Binding | null> {
  if (!isUuid(p.bindingId)) return null;
  await q.query(
    `UPDATE bindings SET is_default = false, updated_at = now()
      WHERE merchant_id = $1 AND identity_id = $2 AND status = 'active' AND is_default AND id <> $3`,
    [p.merchantId, p.identityId, p.bindingId],
  );
  const r = await q.query(
    `UPDATE bindings SET is_default = true, updated_at = now()
      WHERE id = $3 AND merchant_id = $1 AND identity_id = $2 AND status = 'active'
      RETURNING ${COLUMNS}`,
    [p.merchantId, p.identityId, p.bindingId],
  );
  return r.rows[0] ? toBinding(r.rows[0]) : null;
}

/** After the default was unlinked, the oldest remaining link becomes the default. */
export async function promoteOldestToDefault(q: Queryable, merchantId: string, identityId: string): Promise<void> {
  await q.query(
    `UPDATE bindings SET is_default = true, updated_at = now()
      WHERE id = (SELECT id FROM bindings WHERE merchant_id = $1 AND identity_id = $2 AND status = 'active'
                   ORDER BY created_at, id LIMIT 1)
        AND NOT EXISTS (SELECT 1 FROM bindings WHERE merchant_id = $1 AND identity_id = $2 AND status = 'active' AND is_default)`,
    [merchantId, identityId],
  );
}

/** Serialises link/unlink of one user at one merchant (maxAccountsPerUser is a count, not an index). */
export async function lockUserAtMerchant(q: Queryable, merchantId: string, identityId: string): Promise<void> {
  await q.query(`SELECT pg_advisory_xact_lock(hashtextextended('wxb:bind:' || $1 || ':' || $2, 0))`, [merchantId, identityId]);
}
