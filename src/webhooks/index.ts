/**
 * The webhooks feature (DESIGN.md "Webhooks", issue 7): the outbox writer other features
 * call in their transactions (`events.ts`), the sender ROLE=worker|all runs, and the
 * service the admin UI will call to show the delivery log and replay an event.
 */
import type { Logger } from 'pino';
import type { AppConfig } from '../config/index.ts';
import type { Feature } from '../http/feature.ts';
import type { Metrics } from '../http/metrics.ts';
import type { Db } from '../store/db.ts';
import type { LeaseLoop } from './lease-loop.ts';
import { createWebhookSender, type WebhookSenderOptions } from './sender.ts';
import { findEvent, listAttempts, replayEvent, type AttemptView, type WebhookEventView } from './webhooks.queries.ts';

export { enqueueWebhookEvent, webhookEventTypes, type WebhookEventType } from './events.ts';
export { createSigner, verifySigned } from './signing.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const defaultWebhookOptions: Readonly<WebhookSenderOptions> = Object.freeze({
  batchSize: 50,
  maxInFlight: 200,
  // A hanging merchant endpoint holds at most this many slots (for timeoutMs each); a healthy
  // one still gets 20 / its latency events per second, e.g. 200/s at 100 ms.
  maxInFlightPerMerchant: 20,
  pollMs: 500,
  leaseMs: 60_000,
  timeoutMs: 10_000,
  maintainEveryMs: 10_000,
  // 5 s, 10 s, 20 s … capped at an hour: about 30 attempts in the day.
  backoff: { baseMs: 5_000, capMs: 3600_000 },
  windowMs: 24 * 3600_000,
});

export interface WebhooksService {
  /** Queues a finished (abandoned or sent) event again, with a fresh retry window. */
  replay(p: { eventId: string; merchantId?: string }): Promise<'replayed' | 'not_found' | 'in_progress'>;
  getEvent(eventId: string): Promise<WebhookEventView | null>;
  listAttempts(eventId: string): Promise<AttemptView[]>;
}

export interface WebhooksFeatureDeps {
  db: Db;
  log: Logger;
  config: Pick<AppConfig, 'merchants'>;
  fetch?: typeof fetch;
  now?: () => number;
  random?: () => number;
  options?: Partial<WebhookSenderOptions>;
  metrics?: Metrics;
}

export interface WebhooksFeature extends Feature {
  readonly service: WebhooksService;
  createSender(): LeaseLoop;
}

export function createWebhooksFeature(deps: WebhooksFeatureDeps): WebhooksFeature {
  const log = deps.log.child({ feature: 'webhooks' });
  const now = deps.now ?? Date.now;
  const options = { ...defaultWebhookOptions, ...deps.options };
  const attempts = deps.metrics?.counter('wxbridge_webhook_attempts_total', 'Webhook delivery attempts by outcome', ['outcome']);
  const makeSender = () =>
    createWebhookSender({
      db: deps.db,
      log,
      now,
      fetch: deps.fetch ?? globalThis.fetch,
      merchants: deps.config.merchants,
      options,
      random: deps.random,
      onAttempt: (outcome) => attempts?.inc({ outcome }),
    });
  let sender: LeaseLoop | undefined;

  const service: WebhooksService = {
    async replay({ eventId, merchantId }) {
      if (!UUID.test(eventId)) return 'not_found';
      const moved = await replayEvent(deps.db, { id: eventId, merchantId: merchantId ?? null, now: now() });
      if (moved) {
        log.info({ eventId }, 'webhook event replayed');
        sender?.wake();
        return 'replayed';
      }
      const ev = await findEvent(deps.db, eventId);
      return !ev || (merchantId !== undefined && ev.merchantId !== merchantId) ? 'not_found' : 'in_progress';
    },
    getEvent: async (id) => (UUID.test(id) ? findEvent(deps.db, id) : null),
    listAttempts: async (id) => (UUID.test(id) ? listAttempts(deps.db, id) : []),
  };

  return {
    name: 'webhooks',
    service,
    createSender: makeSender,
    startWorkers() {
      sender ??= makeSender();
      sender.start();
    },
    async stop() {
      await sender?.stop();
    },
  };
}
