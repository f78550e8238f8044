/**
 * SQL for one-time binding codes (migration 200 `binding_codes`). Only an HMAC of a code is
 * stored; a QR variant is found by its scene string. Redemption locks the row, so two
 * redemptions of one code cannot both succeed.
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';

const codeRow = z.object({
  id: z.string(),
  merchant_id: z.string(),
  account_id: z.string(),
  account_display: z.string().nullable(),
});

export type BindingCodeRow = { id: string; merchantId: string; accountId: string; accountDisplay: string | null };

export async function insertBindingCode(
  q: Queryable,
  c: { codeHash: string; merchantId: string; accountId: string; accountDisplay: string | null; qrScene: string | null; qrTicket: string | null; expiresAt: Date; createdBy: string },
): Promise<string> {
  const r = await q.query<{ id: string }>(
    `INSERT INTO binding_codes (code_hash, merchant_id, account_id, account_display, qr_scene, qr_ticket, expires_at, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
    [c.codeHash, c.merchantId, c.accountId, c.accountDisplay, c.qrScene, c.qrTicket, c.expiresAt.toISOString(), c.createdBy],
  );
  return z.string().parse(r.rows[0]?.id);
}

async function selectRedeemable(q: Queryable, by: { codeHash: string } | { qrScene: string }, now: Date, lock: boolean): Promise<BindingCodeRow | null> {
  const [column, value] = 'codeHash' in by ? ['code_hash', by.codeHash] : ['qr_scene', by.qrScene];
  const r = await q.query(
    `SELECT id, merchant_id, account_id, account_display FROM binding_codes
      WHERE ${column} = $1 AND used_at IS NULL AND expires_at > $2${lock ? ' FOR UPDATE' : ''}`,
    [value, now.toISOString()],
  );
  if (!r.rows[0]) return null;
  const row = codeRow.parse(r.rows[0]);
  return { id: row.id, merchantId: row.merchant_id, accountId: row.account_id, accountDisplay: row.account_display };
}

/** The unused, unexpired code, locked for this transaction; null otherwise. */
export const lockRedeemableCode = (q: Queryable, by: { codeHash: string } | { qrScene: string }, now: Date) => selectRedeemable(q, by, now, true);

/** The same, without a lock: what a code would link, for the confirmation page. */
export const findRedeemableCode = (q: Queryable, codeHash: string, now: Date) => selectRedeemable(q, { codeHash }, now, false);

export async function markCodeUsed(q: Queryable, p: { id: string; identityId: string; bindingId: string; at: Date }): Promise<void> {
  await q.query('UPDATE binding_codes SET used_at = $2, used_by = $3, binding_id = $4 WHERE id = $1', [p.id, p.at.toISOString(), p.identityId, p.bindingId]);
}
