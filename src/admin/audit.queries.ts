/**
 * Read-only SQL over audit_log for the admin's audit page, exports, a binding's history
 * and an identity's timeline. Scoped accounts see only rows of their merchant; rows
 * without a merchant (sign-ins, key rotations) are for unscoped accounts only.
 */
import { type z } from 'zod';
import type { Queryable } from '../store/db.ts';
import { isUuid } from '../store/rows.ts';
import { scopeSql, type Scope } from './policy.ts';
import { auditRowSchema } from '../linking/audit.queries.ts';

const auditRow = auditRowSchema.omit({ prev_hash: true });
export type AuditRow = z.infer<typeof auditRow>;

const COLUMNS = 'id, at, actor, action, merchant_id, identity_id, binding_id, source, detail, hash';

export interface AuditFilter {
  merchantId?: string;
  actor?: string;
  /** A prefix: `binding.` matches every binding action. */
  action?: string;
  identityId?: string;
  bindingId?: string;
  from?: Date;
  to?: Date;
  beforeId?: number;
  limit: number;
}

function where(scope: Scope, f: Omit<AuditFilter, 'limit'>, params: unknown[]): string {
  const w = [scopeSql(scope, 'merchant_id', params)];
  if (f.merchantId) w.push(`merchant_id = $${params.push(f.merchantId)}`);
  if (f.actor) w.push(`actor = $${params.push(f.actor)}`);
  if (f.action) w.push(`starts_with(action, $${params.push(f.action)})`);
  if (f.identityId) w.push(isUuid(f.identityId) ? `identity_id = $${params.push(f.identityId)}` : 'FALSE');
  if (f.bindingId) w.push(isUuid(f.bindingId) ? `binding_id = $${params.push(f.bindingId)}` : 'FALSE');
  if (f.from) w.push(`at >= $${params.push(f.from.toISOString())}`);
  if (f.to) w.push(`at < $${params.push(f.to.toISOString())}`);
  if (f.beforeId) w.push(`id < $${params.push(f.beforeId)}`);
  return w.join(' AND ');
}

/** Newest first. */
export async function listAudit(q: Queryable, scope: Scope, f: AuditFilter): Promise<AuditRow[]> {
  const params: unknown[] = [];
  const w = where(scope, f, params);
  const r = await q.query(`SELECT ${COLUMNS} FROM audit_log WHERE ${w} ORDER BY id DESC LIMIT $${params.push(f.limit)}`, params);
  return r.rows.map((row) => auditRow.parse(row));
}

export const recentAuditFor = (q: Queryable, scope: Scope, f: Omit<AuditFilter, 'limit'>, limit: number) => listAudit(q, scope, { ...f, limit });

/** Oldest first, a page at a time, for exports of any size without holding them in memory. */
export async function* auditPages(q: Queryable, scope: Scope, f: Omit<AuditFilter, 'limit' | 'beforeId'>, pageSize = 1000): AsyncGenerator<AuditRow[]> {
  let afterId = 0;
  for (;;) {
    const params: unknown[] = [];
    const w = where(scope, f, params);
    const r = await q.query(
      `SELECT ${COLUMNS} FROM audit_log WHERE ${w} AND id > $${params.push(afterId)} ORDER BY id LIMIT $${params.push(pageSize)}`,
      params,
    );
    const rows = r.rows.map((row) => auditRow.parse(row));
    if (rows.length === 0) return;
    yield rows;
    afterId = rows[rows.length - 1]!.id;
    if (rows.length < pageSize) return;
  }
}

/** The distinct actions seen, for the filter's choices. */
export async function auditActions(q: Queryable, scope: Scope): Promise<string[]> {
  const params: unknown[] = [];
  const r = await q.query<{ action: string }>(`SELECT DISTINCT action FROM audit_log WHERE ${scopeSql(scope, 'merchant_id', params)} ORDER BY action LIMIT 200`, params);
  return r.rows.map((x) => x.action);
}
