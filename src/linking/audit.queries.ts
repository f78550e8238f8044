/**
 * Appending to and verifying the hash-chained audit log (migration 200 `audit_log`).
 * Appends are serialised by a transaction-scoped advisory lock, so "the row before" is
 * well defined under concurrency; callers append as the last statement of their
 * transaction to hold that lock as briefly as possible.
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';
import { auditHash, GENESIS_HASH, type AuditContent } from './audit-chain.ts';
import { date, int, jsonObject } from '../store/rows.ts';

/** hashtext-free constant: the one lock id of the audit chain. */
const AUDIT_LOCK_ID = 7_331_000_200;

/** Linking's actions; other features append to the same chain under their own prefix (`admin.…`). */
export type AuditAction =
  | `admin.${string}`
  | 'binding.linked'
  | 'binding.unlinked'
  | 'binding.default_changed'
  | 'proof.failed'
  | 'binding_code.created';

export interface AuditEntry {
  actor: string;
  action: AuditAction;
  merchantId?: string | null;
  identityId?: string | null;
  bindingId?: string | null;
  source?: string | null;
  /** Never what the user typed, never secrets: ids, reasons, method names. */
  detail?: Record<string, string | number | boolean | null>;
}

export async function appendAudit(q: Queryable, e: AuditEntry, at: Date): Promise<void> {
  await q.query('SELECT pg_advisory_xact_lock($1)', [AUDIT_LOCK_ID]);
  const last = await q.query<{ hash: string }>('SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1');
  const prevHash = last.rows[0]?.hash ?? GENESIS_HASH;
  const content: AuditContent = {
    at: at.toISOString(),
    actor: e.actor,
    action: e.action,
    merchantId: e.merchantId ?? null,
    identityId: e.identityId ?? null,
    bindingId: e.bindingId ?? null,
    source: e.source ?? null,
    detail: e.detail ?? {},
  };
  await q.query(
    `INSERT INTO audit_log (at, actor, action, merchant_id, identity_id, binding_id, source, detail, prev_hash, hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [content.at, content.actor, content.action, content.merchantId, content.identityId, content.bindingId, content.source,
      JSON.stringify(content.detail), prevHash, auditHash(prevHash, content)],
  );
}

/** An audit_log row as stored; the admin's reads leave out `prev_hash`. */
export const auditRowSchema = z.object({
  id: int,
  at: date,
  actor: z.string(),
  action: z.string(),
  merchant_id: z.string().nullable(),
  identity_id: z.string().nullable(),
  binding_id: z.string().nullable(),
  source: z.string().nullable(),
  detail: jsonObject,
  prev_hash: z.string(),
  hash: z.string(),
});

export interface ChainReport {
  ok: boolean;
  checked: number;
  /** Id of the first row whose links or content do not verify. */
  brokenAt?: number;
}

/** Re-computes the whole chain in id order, a page at a time. */
export async function verifyAuditChain(q: Queryable, pageSize = 1000): Promise<ChainReport> {
  let prev = GENESIS_HASH;
  let afterId = 0;
  let checked = 0;
  for (;;) {
    const r = await q.query(
      `SELECT id, at, actor, action, merchant_id, identity_id, binding_id, source, detail, prev_hash, hash
         FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2`,
      [afterId, pageSize],
    );
    if (r.rows.length === 0) return { ok: true, checked };
    for (const raw of r.rows) {
      const row = auditRowSchema.parse(raw);
      const content: AuditContent = {
        at: row.at.toISOString(),
        actor: row.actor,
        action: row.action,
        merchantId: row.merchant_id,
        identityId: row.identity_id,
        bindingId: row.binding_id,
        source: row.source,
        detail: row.detail,
      };
      if (row.prev_hash !== prev || row.hash !== auditHash(prev, content)) return { ok: false, checked, brokenAt: row.id };
      prev = row.hash;
      afterId = row.id;
      checked += 1;
    }
  }
}
