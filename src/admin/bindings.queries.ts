/**
 * Read-only SQL for the admin's bindings list, search and detail, over linking's tables
 * (identities, bindings, subjects). Every list takes a `Scope` from the policy; a detail
 * read returns the row's merchant so the route can make the object-level check.
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';
import { isUuid } from '../store/rows.ts';
import { scopeSql, type Scope } from './policy.ts';
import { bindingRow } from '../linking/bindings.queries.ts';

const rowSchema = bindingRow.omit({ proven_at: true }).extend({
  proof: z.string(),
  revoked_by: z.string().nullable(),
  app_id: z.string(),
  openid: z.string(),
  unionid: z.string().nullable(),
  nickname: z.string().nullable(),
  sub: z.string().nullable(),
});
export type AdminBindingRow = z.infer<typeof rowSchema>;

const SELECT = `SELECT b.id, b.merchant_id, b.identity_id, b.account_id, b.account_display, b.status, b.is_default, b.proof,
    b.created_by, b.created_at, b.revoked_at, b.revoked_by, b.revoke_reason, i.app_id, i.openid, i.unionid, i.nickname, s.sub
  FROM bindings b JOIN identities i ON i.id = b.identity_id
  LEFT JOIN subjects s ON s.merchant_id = b.merchant_id AND s.identity_id = b.identity_id`;

export interface BindingFilter {
  merchantId?: string;
  status?: 'active' | 'revoked';
  proof?: string;
  /** One box for every id an operator has at hand: binding id, account id, openid, unionid, pairwise sub. */
  q?: string;
  before?: { createdAt: Date; id: string };
  limit: number;
}

export async function listBindings(q: Queryable, scope: Scope, f: BindingFilter): Promise<AdminBindingRow[]> {
  const params: unknown[] = [];
  const where = [scopeSql(scope, 'b.merchant_id', params)];
  if (f.merchantId) where.push(`b.merchant_id = $${params.push(f.merchantId)}`);
  if (f.status) where.push(`b.status = $${params.push(f.status)}`);
  if (f.proof) where.push(`b.proof = $${params.push(f.proof)}`);
  if (f.q) {
    const n = params.push(f.q.trim());
    const byId = isUuid(f.q.trim()) ? ` OR b.id = $${n}::uuid OR b.identity_id = $${n}::uuid` : '';
    where.push(`(b.account_id = $${n} OR i.openid = $${n} OR i.unionid = $${n} OR s.sub = $${n}${byId})`);
  }
  if (f.before) where.push(`(b.created_at, b.id) < ($${params.push(f.before.createdAt.toISOString())}::timestamptz, $${params.push(f.before.id)}::uuid)`);
  const r = await q.query(`${SELECT} WHERE ${where.join(' AND ')} ORDER BY b.created_at DESC, b.id DESC LIMIT $${params.push(f.limit)}`, params);
  return r.rows.map((row) => rowSchema.parse(row));
}

/** Unscoped on purpose: the route needs the merchant to refuse with 403 (policy.assertMerchant). */
export async function findBindingRow(q: Queryable, id: string): Promise<AdminBindingRow | null> {
  if (!isUuid(id)) return null;
  const r = await q.query(`${SELECT} WHERE b.id = $1`, [id]);
  return r.rows[0] ? rowSchema.parse(r.rows[0]) : null;
}

/** Bindings of many ids at once (CSV export by filter uses listBindings; this serves the identity page). */
export async function bindingsOfIdentity(q: Queryable, scope: Scope, identityId: string): Promise<AdminBindingRow[]> {
  if (!isUuid(identityId)) return [];
  const params: unknown[] = [identityId];
  const r = await q.query(`${SELECT} WHERE b.identity_id = $1 AND ${scopeSql(scope, 'b.merchant_id', params)} ORDER BY b.status, b.created_at DESC`, params);
  return r.rows.map((row) => rowSchema.parse(row));
}
