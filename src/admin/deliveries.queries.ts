/**
 * Read-only SQL over the notices and webhooks outboxes (migrations 501, 502) for the
 * delivery lists: status, attempts, WeChat errcode or HTTP status, newest first, scoped.
 * Never the notice's content or the webhook's payload: metadata only.
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';
import { date, int, isUuid } from './rows.ts';
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
  merchantId?: string;
  status?: string;
  identityId?: string;
  limit: number;
}

export async function listNoticeDeliveries(q: Queryable, scope: Scope, f: DeliveryFilter): Promise<NoticeDeliveryRow[]> {
  const params: unknown[] = [];
  const w = [scopeSql(scope, 'd.merchant_id', params)];
  if (f.merchantId) w.push(`d.merchant_id = $${params.push(f.merchantId)}`);
  if (f.status) w.push(`d.status = $${params.push(f.status)}`);
  if (f.identityId) w.push(isUuid(f.identityId) ? `d.identity_id = $${params.push(f.identityId)}` : 'FALSE');
  const r = await q.query(
    `SELECT d.id, d.notice_id, d.merchant_id, d.identity_id, d.account_id, n.template, d.status, d.channel, d.attempts, d.errcode, d.error, d.created_at, d.updated_at
       FROM notice_deliveries d JOIN notices n ON n.id = d.notice_id
      WHERE ${w.join(' AND ')} ORDER BY d.created_at DESC, d.id LIMIT $${params.push(f.limit)}`,
    params,
  );
  return r.rows.map((row) => noticeRow.parse(row));
}

export async function listWebhookEvents(q: Queryable, scope: Scope, f: Omit<DeliveryFilter, 'identityId'>): Promise<WebhookEventRow[]> {
  const params: unknown[] = [];
  const w = [scopeSql(scope, 'merchant_id', params)];
  if (f.merchantId) w.push(`merchant_id = $${params.push(f.merchantId)}`);
  if (f.status) w.push(`status = $${params.push(f.status)}`);
  const r = await q.query(
    `SELECT id, merchant_id, type, status, attempts, last_status, last_error, replays, created_at, updated_at
       FROM webhook_events WHERE ${w.join(' AND ')} ORDER BY created_at DESC, id LIMIT $${params.push(f.limit)}`,
    params,
  );
  return r.rows.map((row) => webhookRow.parse(row));
}

/** Unscoped by design: the route checks the merchant (403) before acting. */
export async function webhookEventMerchant(q: Queryable, id: string): Promise<string | null> {
  if (!isUuid(id)) return null;
  const r = await q.query<{ merchant_id: string }>('SELECT merchant_id FROM webhook_events WHERE id = $1', [id]);
  return r.rows[0]?.merchant_id ?? null;
}

export async function noticeDeliveryMerchant(q: Queryable, id: string): Promise<string | null> {
  if (!isUuid(id)) return null;
  const r = await q.query<{ merchant_id: string }>('SELECT merchant_id FROM notice_deliveries WHERE id = $1', [id]);
  return r.rows[0]?.merchant_id ?? null;
}
