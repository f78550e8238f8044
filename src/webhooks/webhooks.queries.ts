/**
 * SQL of webhook delivery (migrations 500, 502): claim under leases with a per-merchant cap,
 * one statement per attempt that logs it and moves the event, lease recovery (a counted
 * attempt), replay and the delivery log.
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';

const eventRow = z.object({
  id: z.string(),
  merchant_id: z.string(),
  type: z.string(),
  data: z.record(z.string(), z.unknown()),
  created_at: z.date(),
  attempts: z.number(),
  window_start: z.date(),
});

export interface ClaimedEvent {
  id: string;
  merchantId: string;
  type: string;
  data: Record<string, unknown>;
  createdAt: Date;
  attempts: number;
  windowStart: number;
  leaseId: string;
}

/**
 * Claims due events of the merchants this worker's config knows; others wait for a worker that
 * does. No merchant holds more than `perMerchant` live leases across all workers: its events
 * beyond that wait in the queue, so one merchant's hanging endpoint (each attempt holding a
 * slot for the whole timeout) cannot fill the workers and starve the other merchants. The
 * count is read in the same statement that claims; a concurrent claimer sees the rows this one
 * picked as locked (skipped) or, once committed, as no longer queued, so the cap holds.
 * Each merchant below its cap contributes at most its remaining room of its next events,
 * read through its own queue index (migration 690), so the cost does not grow with a backlog.
 */
export async function claimEvents(
  q: Queryable,
  p: { now: number; limit: number; perMerchant: number; leaseId: string; leaseMs: number; merchants: string[] },
): Promise<ClaimedEvent[]> {
  const r = await q.query(
    `WITH busy AS (
       SELECT merchant_id, count(*)::int AS n FROM webhook_events
       WHERE status = 'processing' AND lease_until >= $1 AND merchant_id = ANY ($5::text[])
       GROUP BY merchant_id
     ), room AS (
       -- A merchant already at its cap takes nothing this round.
       SELECT m.merchant_id, $6 - COALESCE(b.n, 0) AS n
       FROM unnest($5::text[]) AS m (merchant_id) LEFT JOIN busy b ON b.merchant_id = m.merchant_id
       WHERE COALESCE(b.n, 0) < $6
     ), candidates AS (
       SELECT c.id FROM room r
       CROSS JOIN LATERAL (
         SELECT e.id FROM webhook_events e
         WHERE e.merchant_id = r.merchant_id AND e.status = 'queued' AND e.next_attempt_at <= $1
         ORDER BY e.next_attempt_at, e.id LIMIT r.n
       ) c
     ), due AS (
       -- Locked apart from the LATERAL (FOR UPDATE there would lock per merchant, not skip).
       SELECT e.id FROM webhook_events e
       WHERE e.status = 'queued' AND e.id IN (SELECT id FROM candidates)
       ORDER BY e.next_attempt_at LIMIT $2
       FOR UPDATE SKIP LOCKED
     )
     UPDATE webhook_events e SET status = 'processing', lease_id = $3, lease_until = $4, updated_at = $1
     FROM due WHERE e.id = due.id
     RETURNING e.id, e.merchant_id, e.type, e.data, e.created_at, e.attempts, e.window_start`,
    [new Date(p.now), p.limit, p.leaseId, new Date(p.now + p.leaseMs), p.merchants, p.perMerchant],
  );
  return r.rows.map((raw) => {
    const row = eventRow.parse(raw);
    return {
      id: row.id,
      merchantId: row.merchant_id,
      type: row.type,
      data: row.data,
      createdAt: row.created_at,
      attempts: row.attempts,
      windowStart: row.window_start.getTime(),
      leaseId: p.leaseId,
    };
  });
}

export interface AttemptRecord {
  eventId: string;
  leaseId: string;
  outcome: 'sent' | 'retry' | 'abandoned';
  /** Origin + path of the endpoint; null when no request was made (nothing to log). */
  endpoint: string | null;
  startedAt: number;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
  nextAt: number | null;
  now: number;
}

/** Logs the attempt and moves the event, if this worker still holds its lease. */
export async function recordAttempt(q: Queryable, a: AttemptRecord): Promise<boolean> {
  const r = await q.query<{ id: string }>(
    `WITH u AS (
       UPDATE webhook_events SET
         status = CASE $3 WHEN 'sent' THEN 'sent' WHEN 'abandoned' THEN 'abandoned' ELSE 'queued' END,
         attempts = attempts + CASE WHEN $4::text IS NULL THEN 0 ELSE 1 END,
         next_attempt_at = COALESCE($5, next_attempt_at),
         last_status = $6, last_error = $7,
         sent_at = CASE WHEN $3 = 'sent' THEN $8 ELSE sent_at END,
         abandoned_at = CASE WHEN $3 = 'abandoned' THEN $8 ELSE NULL END,
         lease_id = NULL, lease_until = NULL, updated_at = $8
       WHERE id = $1 AND lease_id = $2 AND status = 'processing'
       RETURNING id, attempts
     ), l AS (
       INSERT INTO webhook_attempts (event_id, attempt, endpoint, started_at, duration_ms, status_code, error, outcome)
       SELECT u.id, u.attempts, $4, $9, $10, $6, $7, $3 FROM u WHERE $4::text IS NOT NULL
     )
     SELECT id FROM u`,
    [a.eventId, a.leaseId, a.outcome, a.endpoint, a.nextAt === null ? null : new Date(a.nextAt), a.statusCode, a.error, new Date(a.now), new Date(a.startedAt), a.durationMs],
  );
  return r.rows.length === 1;
}

export interface ReapParams {
  now: number;
  limit: number;
  backoff: { baseMs: number; capMs: number };
  windowMs: number;
  /** This worker's lease length: when the taken-back attempt is logged as started. */
  leaseMs: number;
  /** Endpoint (origin + path) per merchant, for the attempt log; a merchant not listed is not logged. */
  endpoints: { merchantId: string; endpoint: string }[];
}

/**
 * Events whose worker died mid-attempt go back to the queue: webhooks are at-least-once. The
 * lost attempt counts as one (it may have reached the merchant) and is logged as
 * `lease_expired`; the event waits the same backoff as a failed attempt and is abandoned past
 * its retry window. Without that, an event that kills its worker every time would be claimed
 * again at once, for ever (retryDelay in sender.ts is the same curve, jitter included).
 */
export async function reapExpiredEvents(q: Queryable, p: ReapParams): Promise<{ requeued: number; abandoned: number }> {
  const r = await q.query<{ status: string; n: number }>(
    `WITH x AS (
       SELECT e.id, e.lease_until,
         $1::timestamptz + interval '1 millisecond' * round(LEAST($4::float8, $3::float8 * power(2, LEAST(e.attempts, 30))) * (0.8 + 0.4 * random())) AS next_at
       FROM webhook_events e WHERE e.status = 'processing' AND e.lease_until < $1
       ORDER BY e.lease_until LIMIT $2 FOR UPDATE SKIP LOCKED
     ), u AS (
       UPDATE webhook_events e SET
         status = CASE WHEN x.next_at > e.window_start + interval '1 millisecond' * $5::float8 THEN 'abandoned' ELSE 'queued' END,
         abandoned_at = CASE WHEN x.next_at > e.window_start + interval '1 millisecond' * $5::float8 THEN $1 END,
         attempts = e.attempts + 1, next_attempt_at = x.next_at, last_status = NULL, last_error = 'lease_expired',
         lease_id = NULL, lease_until = NULL, updated_at = $1
       FROM x WHERE e.id = x.id
       RETURNING e.id, e.merchant_id, e.attempts, e.status, x.lease_until
     ), l AS (
       INSERT INTO webhook_attempts (event_id, attempt, endpoint, started_at, duration_ms, status_code, error, outcome)
       SELECT u.id, u.attempts, h.endpoint, u.lease_until - interval '1 millisecond' * $6::float8,
         GREATEST(0, round(extract(epoch FROM $1::timestamptz - u.lease_until) * 1000 + $6::float8))::int, NULL, 'lease_expired',
         CASE u.status WHEN 'abandoned' THEN 'abandoned' ELSE 'retry' END
       FROM u JOIN unnest($7::text[], $8::text[]) AS h (merchant_id, endpoint) ON h.merchant_id = u.merchant_id
     )
     SELECT status, count(*)::int AS n FROM u GROUP BY status`,
    [
      new Date(p.now),
      p.limit,
      p.backoff.baseMs,
      p.backoff.capMs,
      p.windowMs,
      p.leaseMs,
      p.endpoints.map((x) => x.merchantId),
      p.endpoints.map((x) => x.endpoint),
    ],
  );
  const n = (s: string) => r.rows.find((x) => x.status === s)?.n ?? 0;
  return { requeued: n('queued'), abandoned: n('abandoned') };
}

/** Puts a finished event back in the queue with a fresh retry window; null if none moved. */
export async function replayEvent(q: Queryable, p: { id: string; merchantId: string | null; now: number }): Promise<{ id: string; status: string } | null> {
  const r = await q.query<{ id: string; status: string }>(
    `UPDATE webhook_events SET status = 'queued', next_attempt_at = $3, window_start = $3, replays = replays + 1,
       abandoned_at = NULL, updated_at = $3
     WHERE id = $1 AND ($2::text IS NULL OR merchant_id = $2) AND status IN ('abandoned', 'sent')
     RETURNING id, status`,
    [p.id, p.merchantId, new Date(p.now)],
  );
  return r.rows[0] ?? null;
}

export interface WebhookEventView {
  id: string;
  merchantId: string;
  type: string;
  status: string;
  attempts: number;
  replays: number;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: Date;
  nextAttemptAt: Date;
}

const eventViewRow = z.object({
  id: z.string(),
  merchant_id: z.string(),
  type: z.string(),
  status: z.string(),
  attempts: z.number(),
  replays: z.number(),
  last_status: z.number().nullable(),
  last_error: z.string().nullable(),
  created_at: z.date(),
  next_attempt_at: z.date(),
});

export async function findEvent(q: Queryable, id: string): Promise<WebhookEventView | null> {
  const r = await q.query(
    `SELECT id, merchant_id, type, status, attempts, replays, last_status, last_error, created_at, next_attempt_at
     FROM webhook_events WHERE id = $1`,
    [id],
  );
  if (!r.rows[0]) return null;
  const row = eventViewRow.parse(r.rows[0]);
  return {
    id: row.id,
    merchantId: row.merchant_id,
    type: row.type,
    status: row.status,
    attempts: row.attempts,
    replays: row.replays,
    lastStatus: row.last_status,
    lastError: row.last_error,
    createdAt: row.created_at,
    nextAttemptAt: row.next_attempt_at,
  };
}

export interface AttemptView {
  attempt: number;
  endpoint: string;
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
  outcome: string;
}

export async function listAttempts(q: Queryable, eventId: string): Promise<AttemptView[]> {
  const r = await q.query<{ attempt: number; endpoint: string; started_at: Date; duration_ms: number; status_code: number | null; error: string | null; outcome: string }>(
    `SELECT attempt, endpoint, started_at, duration_ms, status_code, error, outcome FROM webhook_attempts WHERE event_id = $1 ORDER BY id`,
    [eventId],
  );
  return r.rows.map((x) => ({ attempt: x.attempt, endpoint: x.endpoint, startedAt: x.started_at, durationMs: x.duration_ms, statusCode: x.status_code, error: x.error, outcome: x.outcome }));
}
