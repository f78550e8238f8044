/**
 * SQL of the notice requests: the idempotent insert, recipient resolution through active
 * bindings (one delivery per linked WeChat user, in the notice's transaction), the status
 * view, and TEMPLATESENDJOBFINISH reports. Raw parameterised SQL on a `Queryable`.
 */
import { z } from 'zod';
import { AppError } from '../http/errors.ts';
import { pgErrorCode, type Queryable } from '../store/db.ts';
import { noticeWebhooksFrom } from './deliveries.queries.ts';
import type { DeliveryRef, DeliveryStatus, DeliveryView, NoticeRequest, Recipient } from './notices.types.ts';

const DIVISION_BY_ZERO = '22012';

export interface NewNotice {
  merchantId: string;
  clientId: string;
  idempotencyKey: string;
  requestHash: string;
  request: NoticeRequest;
}

export async function findNoticeByKey(q: Queryable, merchantId: string, key: string): Promise<{ id: string; requestHash: string; createdAt: Date } | null> {
  const r = await q.query<{ id: string; request_hash: string; created_at: Date }>(
    'SELECT id, request_hash, created_at FROM notices WHERE merchant_id = $1 AND idempotency_key = $2',
    [merchantId, key],
  );
  const row = r.rows[0];
  return row ? { id: row.id, requestHash: row.request_hash, createdAt: row.created_at } : null;
}

// Fixed fragments per recipient kind; the value is always parameter $13 (`$1` is the merchant).
// Tags are stored merchant-scoped as `<merchantId>:<tag>` (inbox/tags.service.ts, the one
// writer): the notice's own merchant is the prefix, so a merchant only ever reaches users it
// tagged itself, never another merchant's tag of the same name on a shared official account.
// Merchant ids are slugs and tags have no `:`, so the joined form is unambiguous.
const recipientFilter: Record<string, string> = {
  account: 'b.account_id = $13',
  binding: 'b.id = $13::uuid',
  sub: 'i.id = (SELECT s.identity_id FROM subjects s WHERE s.merchant_id = $1 AND s.sub = $13)',
  tag: "($1::text || ':' || $13::text) = ANY (i.tags)",
  all: '$13::text IS NOT NULL',
  subscribed: '$13::text IS NOT NULL AND i.subscribed IS TRUE',
};

function filterOf(to: Recipient): { sql: string; value: string } {
  if ('account' in to) return { sql: recipientFilter.account as string, value: to.account };
  if ('binding' in to) return { sql: recipientFilter.binding as string, value: to.binding };
  if ('sub' in to) return { sql: recipientFilter.sub as string, value: to.sub };
  if ('tag' in to) return { sql: recipientFilter.tag as string, value: to.tag };
  return { sql: recipientFilter[to.segment] as string, value: to.segment };
}

/**
 * The notice and one delivery per WeChat user with an active binding that matches `to`, in
 * one statement (one transaction, one round trip). When a user has several bindings, the
 * default (else the oldest) is the one named. Returns null when the Idempotency-Key exists
 * (the caller replays or refuses); throws `no_recipients` when nobody matches, which aborts
 * the statement so the notice is not stored either and the key stays free.
 */
export async function insertNotice(q: Queryable, n: NewNotice, p: { appId: string; nextAt: number }): Promise<{ id: string; createdAt: Date; deliveries: DeliveryRef[] } | null> {
  const f = filterOf(n.request.to);
  let r;
  try {
    r = await q.query<{ notice_id: string; created_at: Date; id: string | null; binding_id: string | null; account_id: string | null }>(
      `WITH n AS (
         INSERT INTO notices (merchant_id, client_id, idempotency_key, request_hash, recipient, template, channel, data, url, text)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT ON CONSTRAINT notices__merchant_id_idempotency_key DO NOTHING
         RETURNING id, created_at
       ), d AS (
         INSERT INTO notice_deliveries (notice_id, merchant_id, identity_id, binding_id, account_id, app_id, openid, next_attempt_at)
         SELECT DISTINCT ON (i.id) n.id, b.merchant_id, i.id, b.id, b.account_id, i.app_id, i.openid, $11::timestamptz
         FROM n, bindings b JOIN identities i ON i.id = b.identity_id
         WHERE b.merchant_id = $1 AND b.status = 'active' AND i.app_id = $12 AND ${f.sql}
         ORDER BY i.id, b.is_default DESC, b.created_at
         RETURNING id, binding_id, account_id
       )
       -- A new notice without deliveries divides by zero (22012): the whole statement fails.
       SELECT n.id AS notice_id, n.created_at, d.id, d.binding_id, d.account_id, 1 / (SELECT count(*)::int FROM d) AS guard
       FROM n LEFT JOIN d ON true`,
      [
        n.merchantId,
        n.clientId,
        n.idempotencyKey,
        n.requestHash,
        JSON.stringify(n.request.to),
        n.request.template ?? null,
        n.request.channel,
        JSON.stringify(n.request.data),
        n.request.url ?? null,
        n.request.text ?? null,
        new Date(p.nextAt),
        p.appId,
        f.value,
      ],
    );
  } catch (err) {
    if (pgErrorCode(err) === DIVISION_BY_ZERO) throw new AppError('notices.no_recipients', 'no linked WeChat user matches `to`');
    throw err;
  }
  const first = r.rows[0];
  if (!first) return null;
  return { id: first.notice_id, createdAt: first.created_at, deliveries: r.rows.map((x) => toRef({ id: x.id as string, binding_id: x.binding_id, account_id: x.account_id })).sort(byId) };
}

export async function listDeliveryRefs(q: Queryable, noticeId: string): Promise<DeliveryRef[]> {
  const r = await q.query<{ id: string; binding_id: string | null; account_id: string | null }>(
    'SELECT id, binding_id, account_id FROM notice_deliveries WHERE notice_id = $1',
    [noticeId],
  );
  return r.rows.map(toRef).sort(byId);
}

const toRef = (row: { id: string; binding_id: string | null; account_id: string | null }): DeliveryRef => ({
  id: row.id,
  bindingId: row.binding_id,
  account: row.account_id,
});
const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export async function findNotice(q: Queryable, merchantId: string, id: string) {
  const r = await q.query<{ id: string; template: string | null; channel: string; created_at: Date }>(
    'SELECT id, template, channel, created_at FROM notices WHERE id = $1 AND merchant_id = $2',
    [id, merchantId],
  );
  return r.rows[0] ?? null;
}

const deliveryRow = z.object({
  id: z.string(),
  binding_id: z.string().nullable(),
  account_id: z.string().nullable(),
  status: z.enum(['queued', 'sending', 'sent', 'delivered', 'failed', 'unknown']),
  channel: z.enum(['template', 'customer-service']).nullable(),
  attempts: z.number(),
  errcode: z.number().nullable(),
  error: z.string().nullable(),
  sent_at: z.date().nullable(),
  finished_at: z.date().nullable(),
});

export async function listDeliveries(q: Queryable, p: { noticeId: string; after: string | null; limit: number }): Promise<DeliveryView[]> {
  const r = await q.query(
    `SELECT id, binding_id, account_id, status, channel, attempts, errcode, error, sent_at, finished_at
     FROM notice_deliveries WHERE notice_id = $1 AND ($2::uuid IS NULL OR id > $2::uuid)
     ORDER BY id LIMIT $3`,
    [p.noticeId, p.after, p.limit],
  );
  return r.rows.map((raw) => {
    const row = deliveryRow.parse(raw);
    return {
      ...toRef(row),
      status: row.status,
      // A customer-service intent is internal until the send is over.
      channel: row.status === 'sending' || row.status === 'queued' ? null : row.channel,
      attempts: row.attempts,
      errcode: row.errcode,
      error: row.error,
      sentAt: row.sent_at?.toISOString() ?? null,
      finishedAt: row.finished_at?.toISOString() ?? null,
    };
  });
}

export async function countDeliveries(q: Queryable, noticeId: string): Promise<Partial<Record<DeliveryStatus, number>>> {
  const r = await q.query<{ status: DeliveryStatus; n: number }>(
    'SELECT status, count(*)::int AS n FROM notice_deliveries WHERE notice_id = $1 GROUP BY status',
    [noticeId],
  );
  return Object.fromEntries(r.rows.map((x) => [x.status, x.n]));
}

/** §4.2 Status → our status: `success` is delivered, any `failed:…` is failed. */
const finishSet = `status = CASE WHEN $3 = 'success' THEN 'delivered' ELSE 'failed' END,
  error = CASE WHEN $3 = 'success' THEN NULL ELSE $3 END, finished_at = $4, updated_at = $4`;

/** Moves a `sent` template delivery to delivered/failed; returns how many rows moved (0 or 1). */
export async function finishTemplateJob(q: Queryable, p: { appId: string; msgId: string; status: string; now: number; webhookMerchants: string[] }): Promise<number> {
  const r = await q.query<{ n: number }>(
    `WITH u AS (
       UPDATE notice_deliveries SET ${finishSet}
       WHERE app_id = $1 AND wx_msgid = $2 AND status = 'sent'
       RETURNING id, notice_id, merchant_id, binding_id, account_id, status, channel, errcode, error
     ), w AS (${noticeWebhooksFrom('u', '$5')})
     SELECT count(*)::int AS n FROM u`,
    [p.appId, p.msgId, p.status, new Date(p.now), p.webhookMerchants],
  );
  return r.rows[0]?.n ?? 0;
}

export async function recordTemplateReport(q: Queryable, p: { appId: string; msgId: string; status: string; now: number }): Promise<void> {
  await q.query(
    `INSERT INTO notice_template_reports (app_id, msg_id, status, received_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT ON CONSTRAINT notice_template_reports__pkey DO NOTHING`,
    [p.appId, p.msgId, p.status, new Date(p.now)],
  );
}

/** Applies reports that arrived before their send was recorded; drops those older than `keepMs`. */
export async function applyTemplateReports(q: Queryable, p: { now: number; keepMs: number; webhookMerchants: string[] }): Promise<number> {
  const r = await q.query<{ n: number }>(
    `WITH p AS (
       DELETE FROM notice_template_reports r USING notice_deliveries d
       WHERE d.app_id = r.app_id AND d.wx_msgid = r.msg_id AND d.status = 'sent'
       RETURNING d.id AS delivery_id, r.status AS report
     ), u AS (
       UPDATE notice_deliveries d SET
         status = CASE WHEN p.report = 'success' THEN 'delivered' ELSE 'failed' END,
         error = CASE WHEN p.report = 'success' THEN NULL ELSE p.report END,
         finished_at = $1, updated_at = $1
       FROM p WHERE d.id = p.delivery_id
       RETURNING d.id, d.notice_id, d.merchant_id, d.binding_id, d.account_id, d.status, d.channel, d.errcode, d.error
     ), w AS (${noticeWebhooksFrom('u', '$2')})
     SELECT count(*)::int AS n FROM u`,
    [new Date(p.now), p.webhookMerchants],
  );
  await q.query('DELETE FROM notice_template_reports WHERE received_at < $1', [new Date(p.now - p.keepMs)]);
  return r.rows[0]?.n ?? 0;
}
