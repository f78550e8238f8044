/**
 * Read-only SQL over the notices and webhooks outboxes (migrations 501, 502) for the
 * delivery lists: status, attempts, WeChat errcode or HTTP status, newest first, scoped.
 * Never the notice's content or the webhook's payload: metadata only.
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';
import { date, int, isUuid } from '../store/rows.ts';
import { scopeSql, type Scope } from './policy.ts';


const noticeRow = z.object({
  id: z.string(),
  notice_id: z.string(),
  merchant_id: z.string(),
  identity_id: z.string(),
  account_id: z.string().nullable(),
  template: z.string().nullable(),
  status: z.string(),
  channel: z.string().nullable(),
  attempts: int,
  errcode: int.nullable(),
  error: z.string().nullable(),
  created_at: date,
  updated_at: date,
});
export type NoticeDeliveryRow = z.infer<typeof noticeRow>;

const webhookRow = z.object({
  id: z.string(),
  merchant_id: z.string(),
  type: z.string(),
  status: z.string(),
  attempts: int,
  last_status: int.nullable(),
  last_error: z.string().nullable(),
  replays: int,
  created_at: date,
  updated_at: date,
});
export type WebhookEventRow = z.infer<typeof webhookRow>;

export interface DeliveryFilter {
  merchantId?: string | undefined;
  status?: string | undefined;
  identityId?: string | undefined;
  /** Notices: the WeChat errcode; webhooks: the HTTP status of the last answer. */
  errcode?: number | undefined;
  /** Created on or after this instant, and before `to`. */
  from?: Date | undefined;
  to?: Date | undefined;
  limit: number;
  offset?: number | undefined;
}

/** The conditions every list shares; `t` is the table alias prefix ('' or 'd.'). */
function common(scope: Scope, f: Omit<DeliveryFilter, 'limit' | 'offset'>, params: unknown[], t: string, codeColumn: string): string[] {
  const w = [scopeSql(scope, `${t}merchant_id`, params)];
  if (f.merchantId) w.push(`${t}merchant_id = $${params.push(f.merchantId)}`);
  if (f.status) w.push(`${t}status = $${params.push(f.status)}`);
  if (f.errcode !== undefined) w.push(`${codeColumn} = $${params.push(f.errcode)}`);
  if (f.from) w.push(`${t}created_at >= $${params.push(f.from.toISOString())}`);
  if (f.to) w.push(`${t}created_at < $${params.push(f.to.toISOString())}`);
  return w;
}

const NOTICE_COLUMNS = `d.id, d.notice_id, d.merchant_id, d.identity_id, d.account_id, n.template, d.status, d.channel, d.attempts, d.errcode, d.error, d.created_at, d.updated_at`;

export async function listNoticeDeliveries(q: Queryable, scope: Scope, f: DeliveryFilter): Promise<NoticeDeliveryRow[]> {
  const params: unknown[] = [];
  const w = common(scope, f, params, 'd.', 'd.errcode');
  if (f.identityId) w.push(isUuid(f.identityId) ? `d.identity_id = $${params.push(f.identityId)}` : 'FALSE');
  const r = await q.query(
    `SELECT ${NOTICE_COLUMNS}
       FROM notice_deliveries d JOIN notices n ON n.id = d.notice_id
      WHERE ${w.join(' AND ')} ORDER BY d.created_at DESC, d.id LIMIT $${params.push(f.limit)} OFFSET $${params.push(f.offset ?? 0)}`,
    params,
  );
  return r.rows.map((row) => noticeRow.parse(row));
}

/** One delivery, within the scope (null otherwise): the retry confirmation shows it. */
export async function findNoticeDelivery(q: Queryable, scope: Scope, id: string): Promise<NoticeDeliveryRow | null> {
  if (!isUuid(id)) return null;
  const params: unknown[] = [id];
  const r = await q.query(
    `SELECT ${NOTICE_COLUMNS} FROM notice_deliveries d JOIN notices n ON n.id = d.notice_id
      WHERE d.id = $1 AND ${scopeSql(scope, 'd.merchant_id', params)}`,
    params,
  );
  return r.rows[0] ? noticeRow.parse(r.rows[0]) : null;
}

export async function listWebhookEvents(q: Queryable, scope: Scope, f: Omit<DeliveryFilter, 'identityId'>): Promise<WebhookEventRow[]> {
  const params: unknown[] = [];
  const w = common(scope, f, params, '', 'last_status');
  const r = await q.query(
    `SELECT id, merchant_id, type, status, attempts, last_status, last_error, replays, created_at, updated_at
       FROM webhook_events WHERE ${w.join(' AND ')} ORDER BY created_at DESC, id LIMIT $${params.push(f.limit)} OFFSET $${params.push(f.offset ?? 0)}`,
    params,
  );
  return r.rows.map((row) => webhookRow.parse(row));
}

/** The state of one event before an action on it: what the audit row records as "before". */
export async function webhookEventState(q: Queryable, id: string): Promise<{ merchant_id: string; status: string; attempts: number; replays: number } | null> {
  if (!isUuid(id)) return null;
  const r = await q.query('SELECT merchant_id, status, attempts, replays FROM webhook_events WHERE id = $1', [id]);
  return r.rows[0] ? z.object({ merchant_id: z.string(), status: z.string(), attempts: int, replays: int }).parse(r.rows[0]) : null;
}

/** Unscoped by design: the route checks the merchant (403) before acting. */
export async function noticeDeliveryMerchant(q: Queryable, id: string): Promise<string | null> {
  if (!isUuid(id)) return null;
  const r = await q.query<{ merchant_id: string }>('SELECT merchant_id FROM notice_deliveries WHERE id = $1', [id]);
  return r.rows[0]?.merchant_id ?? null;
}
