/**
 * SQL of an operator's retry of one notice delivery (issue 8 "retry"; issue 7 status
 * rules). Only a `failed` or `unknown` delivery moves, back to `queued` with a fresh
 * attempt budget; the row is locked first, so the check and the move are one atomic step
 * and two operators retrying at once move it once.
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';

/** The delivery as it stood before the retry: what the audit row records as "before". */
const beforeRow = z
  .object({
    id: z.string(),
    merchant_id: z.string(),
    identity_id: z.string(),
    status: z.string(),
    channel: z.string().nullable(),
    attempts: z.union([z.number(), z.string()]).transform(Number),
    errcode: z.number().nullable(),
    error: z.string().nullable(),
  })
  .transform(({ merchant_id, identity_id, ...rest }) => ({ ...rest, merchantId: merchant_id, identityId: identity_id }));
export type DeliveryBefore = z.infer<typeof beforeRow>;

/** Locks the row (in the caller's transaction) and returns it, or null when absent or another merchant's. */
export async function lockDeliveryForRetry(q: Queryable, p: { id: string; merchantId: string | null }): Promise<DeliveryBefore | null> {
  const r = await q.query(
    `SELECT id, merchant_id, identity_id, status, channel, attempts, errcode, error FROM notice_deliveries
      WHERE id = $1 AND ($2::text IS NULL OR merchant_id = $2) FOR UPDATE`,
    [p.id, p.merchantId],
  );
  return r.rows[0] ? beforeRow.parse(r.rows[0]) : null;
}

/**
 * Back to the queue, due now, attempts from zero. `ambiguous_since` is cleared: the retry is
 * a new send decided by a person (for `unknown`, knowing it may duplicate), not the tail of
 * the old one, whose 10-minute `client_msg_id` window has usually passed anyway.
 */
export async function requeueDelivery(q: Queryable, p: { id: string; from: string; now: number }): Promise<boolean> {
  const r = await q.query(
    `UPDATE notice_deliveries SET status = 'queued', attempts = 0, next_attempt_at = $3, ambiguous_since = NULL,
       errcode = NULL, error = NULL, channel = NULL, lease_id = NULL, lease_until = NULL, finished_at = NULL, updated_at = $3
     WHERE id = $1 AND status = $2`,
    [p.id, p.from, new Date(p.now)],
  );
  return r.rowCount === 1;
}
