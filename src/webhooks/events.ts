/**
 * Writing a webhook event into the outbox. Call it with the transaction that makes the
 * change, so the event exists exactly when the change does (SECURITY.md D1/D2).
 * Delivery (signing, retries, replay) belongs to the webhook worker.
 */
import type { Queryable } from '../store/db.ts';

export const webhookEventTypes = [
  'binding.created',
  'binding.revoked',
  'identity.subscribed',
  'identity.unsubscribed',
  'notice.delivered',
  'notice.failed',
] as const;

export type WebhookEventType = (typeof webhookEventTypes)[number];

export async function enqueueWebhookEvent(
  q: Queryable,
  e: { merchantId: string; type: WebhookEventType; data: Record<string, unknown> },
): Promise<string> {
  const r = await q.query<{ id: string }>('INSERT INTO webhook_events (merchant_id, type, data) VALUES ($1, $2, $3) RETURNING id', [
    e.merchantId,
    e.type,
    JSON.stringify(e.data),
  ]);
  return r.rows[0]!.id;
}
