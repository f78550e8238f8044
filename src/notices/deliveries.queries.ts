/**
 * The dispatcher's SQL, kept to a few statements per batch (issue 9 targets 2,000
 * deliveries/s per worker): one claim, at most one intent write, and outcome writes that
 * update many rows and enqueue their webhooks in one statement. Times come from the app's
 * clock (`now`), so every worker and test agrees on one clock.
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';
import type { ClaimedDelivery, Outcome } from './notices.types.ts';

/** The NOTIFY channel of new due deliveries (issue 7: enqueue → first attempt). */
export const NOTICES_CHANNEL = 'wxbridge_notices';

/**
 * Tells the workers of every process that deliveries are due (they LISTEN), after the
 * enqueue committed. Not inside the enqueue's own statement: Postgres serializes the commits
 * of transactions that NOTIFY (a lock held through the commit's WAL flush), which would
 * queue every merchant's enqueue behind every other's. Here at most one NOTIFY per process is
 * in flight and the calls that come meanwhile share the next one. Best effort: a lost one
 * costs one poll interval.
 */
export function createAnnouncer(q: Queryable, onError: (err: unknown) => void): () => void {
  let state: 'idle' | 'sending' | 'again' = 'idle';
  const send = (): void => {
    state = 'sending';
    q.query('SELECT pg_notify($1, $2)', [NOTICES_CHANNEL, ''])
      .catch(onError)
      .finally(() => {
        if (state === 'again') send();
        else state = 'idle';
      });
  };
  return () => {
    if (state === 'idle') send();
    else state = 'again';
  };
}

const noticeDataSchema = z.record(z.string(), z.union([z.string(), z.number()]));

const claimedRow = z.object({
  id: z.string(),
  notice_id: z.string(),
  merchant_id: z.string(),
  identity_id: z.string(),
  app_id: z.string(),
  openid: z.string(),
  attempts: z.number(),
  ambiguous_since: z.date().nullable(),
  template: z.string().nullable(),
  requested_channel: z.enum(['auto', 'template', 'customer-service']),
  data: z.unknown(),
  url: z.string().nullable(),
  text: z.string().nullable(),
});

/**
 * Leases up to `limit` due deliveries of the merchants this worker knows (during a config
 * roll-out an older worker leaves a new merchant's notices to the others); rows another
 * worker holds are skipped, not waited on.
 *
 * Recipients are resolved through active bindings when the notice is accepted, but a
 * delivery may wait long after that (quiet hours, backoff, a backlog). A user whose binding
 * was revoked meanwhile is no longer linked to the merchant and must get nothing: in the
 * same statement as the claim, such a delivery is settled `failed` (`binding_revoked`,
 * with its `notice.failed` webhook, as any failure) and never handed to a worker. A revoke
 * that commits after this statement's snapshot races with the send itself and may lose.
 */
export async function claimDeliveries(
  q: Queryable,
  p: {
    now: number;
    limit: number;
    leaseId: string;
    leaseMs: number;
    merchants: string[];
    /** Merchants with a webhook: a delivery failed here enqueues its `notice.failed` for these. */
    webhookMerchants: string[];
  },
): Promise<ClaimedDelivery[]> {
  const now = new Date(p.now);
  const leaseUntil = p.now + p.leaseMs;
  const r = await q.query(
    `WITH due AS (
       SELECT d.id, EXISTS (SELECT 1 FROM bindings b WHERE b.id = d.binding_id AND b.status = 'active') AS linked
       FROM notice_deliveries d
       WHERE d.status = 'queued' AND d.next_attempt_at <= $1 AND d.merchant_id = ANY ($5::text[])
       ORDER BY d.next_attempt_at
       LIMIT $2
       FOR UPDATE OF d SKIP LOCKED
     ), revoked AS (
       UPDATE notice_deliveries d
       SET status = 'failed', channel = NULL, errcode = NULL, error = 'binding_revoked',
         lease_id = NULL, lease_until = NULL, finished_at = $1, updated_at = $1
       FROM due
       WHERE d.id = due.id AND NOT due.linked
       RETURNING d.id, d.notice_id, d.merchant_id, d.binding_id, d.account_id, d.status, d.channel, d.errcode, d.error
     ), w AS (${noticeWebhooksFrom('revoked', '$6')})
     UPDATE notice_deliveries d
     SET status = 'sending', lease_id = $3, lease_until = $4, claimed_at = $1, channel = NULL, updated_at = $1
     FROM due, notices n
     WHERE d.id = due.id AND due.linked AND n.id = d.notice_id
     RETURNING d.id, d.notice_id, d.merchant_id, d.identity_id, d.app_id, d.openid, d.attempts, d.ambiguous_since,
       n.template, n.channel AS requested_channel, n.data, n.url, n.text`,
    [now, p.limit, p.leaseId, new Date(leaseUntil), p.merchants, p.webhookMerchants],
  );
  // A batch holds many deliveries of few notices: each notice's data is checked once.
  const dataOf = new Map<string, Record<string, string | number>>();
  return r.rows.map((raw) => {
    const row = claimedRow.parse(raw);
    let data = dataOf.get(row.notice_id);
    if (!data) {
      data = noticeDataSchema.parse(row.data);
      dataOf.set(row.notice_id, data);
    }
    return {
      id: row.id,
      noticeId: row.notice_id,
      merchantId: row.merchant_id,
      identityId: row.identity_id,
      appId: row.app_id,
      openid: row.openid,
      attempts: row.attempts,
      ambiguousSince: row.ambiguous_since ? row.ambiguous_since.getTime() : null,
      leaseId: p.leaseId,
      leaseUntil,
      notice: { template: row.template, channel: row.requested_channel, data, url: row.url, text: row.text },
    };
  });
}

/**
 * Records, before the send, that these deliveries go out as customer-service messages: if
 * the worker dies now, the reaper knows the outcome is ambiguous (no idempotency key there).
 */
export async function markCustomerServiceIntent(q: Queryable, ids: string[], leaseId: string): Promise<void> {
  if (ids.length === 0) return;
  await q.query(`UPDATE notice_deliveries SET channel = 'customer-service' WHERE id = ANY($1::uuid[]) AND lease_id = $2`, [ids, leaseId]);
}

/** Enqueues `notice.delivered` / `notice.failed` for the rows of CTE `from`, in the same statement. */
export const noticeWebhooksFrom = (from: string, merchantsParam: string): string => `
  INSERT INTO webhook_events (merchant_id, type, data)
  SELECT ${from}.merchant_id,
    CASE ${from}.status WHEN 'delivered' THEN 'notice.delivered' ELSE 'notice.failed' END,
    jsonb_build_object('noticeId', ${from}.notice_id, 'deliveryId', ${from}.id, 'bindingId', ${from}.binding_id,
      'account', ${from}.account_id, 'status', ${from}.status, 'channel', ${from}.channel,
      'errcode', ${from}.errcode, 'error', ${from}.error)
  FROM ${from}
  WHERE ${from}.status IN ('delivered', 'failed') AND ${from}.merchant_id = ANY(${merchantsParam}::text[])`;

export interface OutcomeRow {
  id: string;
  leaseId: string;
  outcome: Outcome;
  /** When the call to WeChat that led to this outcome started; null when none was made. */
  attemptedAt?: number | null;
}

/**
 * Writes outcomes of many deliveries at once, only where this worker still holds the lease,
 * and enqueues the webhooks of those that became final. Returns the ids written.
 */
export async function writeOutcomes(q: Queryable, rows: OutcomeRow[], p: { now: number; webhookMerchants: string[] }): Promise<string[]> {
  if (rows.length === 0) return [];
  const col = <T>(f: (o: Outcome) => T) => rows.map((r) => f(r.outcome));
  const at = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms));
  const r = await q.query<{ id: string }>(
    `WITH r AS (
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int[], $6::int[], $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[], $13::timestamptz[])
         AS r(id, lease_id, status, channel, attempted, errcode, error, msgid, next_at, ambiguous_since, attempted_at)
     ), u AS (
       UPDATE notice_deliveries d SET
         status = r.status,
         channel = r.channel,
         attempts = d.attempts + r.attempted,
         errcode = r.errcode,
         error = r.error,
         wx_msgid = COALESCE(r.msgid, d.wx_msgid),
         next_attempt_at = COALESCE(r.next_at, d.next_attempt_at),
         ambiguous_since = COALESCE(d.ambiguous_since, r.ambiguous_since),
         first_attempt_at = COALESCE(d.first_attempt_at, r.attempted_at),
         lease_id = NULL,
         lease_until = NULL,
         sent_at = CASE WHEN r.status IN ('sent', 'delivered') THEN $11 ELSE d.sent_at END,
         finished_at = CASE WHEN r.status IN ('delivered', 'failed', 'unknown') THEN $11 END,
         updated_at = $11
       FROM r
       WHERE d.id = r.id AND d.lease_id = r.lease_id AND d.status = 'sending'
       RETURNING d.id, d.notice_id, d.merchant_id, d.binding_id, d.account_id, d.status, d.channel, d.errcode, d.error
     ), w AS (${noticeWebhooksFrom('u', '$12')})
     SELECT id FROM u`,
    [
      rows.map((x) => x.id),
      rows.map((x) => x.leaseId),
      col((o) => o.status),
      col((o) => ('channel' in o ? o.channel : null)),
      col((o) => (o.status === 'sent' || o.status === 'delivered' || o.attempted ? 1 : 0)),
      col((o) => ('errcode' in o ? (o.errcode ?? null) : null)),
      col((o) => ('error' in o ? (o.error ?? null) : null)),
      col((o) => (o.status === 'sent' ? o.msgid : null)),
      col((o) => (o.status === 'queued' ? at(o.nextAt) : null)),
      col((o) => (o.status === 'queued' ? at(o.ambiguousSince) : null)),
      new Date(p.now),
      p.webhookMerchants,
      rows.map((x) => at(x.attemptedAt)),
    ],
  );
  return r.rows.map((x) => x.id);
}

/**
 * Takes back deliveries whose worker stopped holding its lease (killed, hung). One that was
 * going out as a customer-service message becomes `unknown` (it may have been delivered and
 * cannot be retried safely); any other goes back to the queue, marked as a possibly-sent
 * template so its retry keeps to the same `client_msg_id` inside WeChat's 10 minutes.
 */
export async function reapExpiredLeases(q: Queryable, p: { now: number; limit: number }): Promise<{ requeued: number; unknown: number }> {
  const now = new Date(p.now);
  const r = await q.query<{ status: string; n: number }>(
    `WITH x AS (
       SELECT id FROM notice_deliveries
       WHERE status = 'sending' AND lease_until < $1
       ORDER BY lease_until LIMIT $2
       FOR UPDATE SKIP LOCKED
     ), u AS (
       UPDATE notice_deliveries d SET
         status = CASE WHEN d.channel = 'customer-service' THEN 'unknown' ELSE 'queued' END,
         error = CASE WHEN d.channel = 'customer-service' THEN 'lease_expired' ELSE d.error END,
         finished_at = CASE WHEN d.channel = 'customer-service' THEN $1 END,
         ambiguous_since = CASE WHEN d.channel = 'customer-service' THEN d.ambiguous_since ELSE COALESCE(d.ambiguous_since, d.claimed_at) END,
         attempts = d.attempts + 1,
         next_attempt_at = $1, lease_id = NULL, lease_until = NULL, updated_at = $1
       FROM x WHERE d.id = x.id
       RETURNING d.status
     )
     SELECT status, count(*)::int AS n FROM u GROUP BY status`,
    [now, p.limit],
  );
  const n = (s: string) => r.rows.find((x) => x.status === s)?.n ?? 0;
  return { requeued: n('queued'), unknown: n('unknown') };
}
