/**
 * Delivers the webhook outbox to merchants (DESIGN.md "Webhooks"): `{id, type, createdAt,
 * data}` POSTed with Standard Webhooks signatures, 2xx means delivered, anything else is
 * retried with exponential backoff until the retry window (24 h from creation or from the
 * last replay) is spent, then abandoned. Every attempt is logged (`webhook_attempts`).
 * Delivery is at-least-once: a worker killed mid-attempt leaves a lease that expires, and
 * the event is sent again with the same `webhook-id`, on which merchants de-duplicate.
 *
 * Merchants are isolated from each other: each event holds its own in-flight slot (not its
 * batch's), and no merchant has more than `maxInFlightPerMerchant` events in flight across all
 * workers, so a merchant whose endpoint hangs uses at most that many slots, each for
 * `timeoutMs`, while the other merchants' events keep going out.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { MerchantConfig } from '../config/index.ts';
import type { Db } from '../store/db.ts';
import { createLeaseLoop, type LeaseLoop } from './lease-loop.ts';
import { createSigner } from './signing.ts';
import { claimEvents, reapExpiredEvents, recordAttempt, type ClaimedEvent } from './webhooks.queries.ts';

export interface WebhookSenderOptions {
  batchSize: number;
  /** Events in flight per worker. */
  maxInFlight: number;
  /** Events in flight per merchant, across all workers (claimEvents). */
  maxInFlightPerMerchant: number;
  pollMs: number;
  leaseMs: number;
  timeoutMs: number;
  maintainEveryMs: number;
  backoff: { baseMs: number; capMs: number };
  /** How long an event is retried, from its creation or its last replay. */
  windowMs: number;
}

export interface WebhookSenderDeps {
  db: Db;
  log: Logger;
  now: () => number;
  fetch: typeof fetch;
  merchants: readonly Pick<MerchantConfig, 'id' | 'webhook'>[];
  options: WebhookSenderOptions;
  random?: () => number;
  onAttempt?: (outcome: 'sent' | 'retry' | 'abandoned') => void;
}

/** Exponential, with ±20 % jitter so a merchant that comes back is not hit by a wave. */
export function retryDelay(attempt: number, p: { baseMs: number; capMs: number }, random: () => number = Math.random): number {
  const exp = Math.min(p.capMs, p.baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.round(exp * (0.8 + 0.4 * random()));
}

/**
 * A per-merchant cap that a worker's own slots cannot hold leaves nothing for the others: one
 * hanging endpoint would fill a worker again. Half is the most one merchant may take.
 */
export function checkSenderOptions(o: Pick<WebhookSenderOptions, 'maxInFlight' | 'maxInFlightPerMerchant'>): void {
  if (!(o.maxInFlightPerMerchant >= 1 && o.maxInFlightPerMerchant <= o.maxInFlight / 2)) {
    throw new Error(`webhooks: maxInFlightPerMerchant (${o.maxInFlightPerMerchant}) must be between 1 and maxInFlight / 2 (${o.maxInFlight / 2})`);
  }
}

/** Never log or store a query string: it may carry the merchant's own token. */
const endpointOf = (url: string): string => {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
};

export function createWebhookSender(deps: WebhookSenderDeps): LeaseLoop {
  const { db, log, now, options: o } = deps;
  checkSenderOptions(o);
  const random = deps.random ?? Math.random;
  // Set by abandon(): outcomes are no longer recorded, as after a killed process.
  let dead = false;
  // Looked up per event: a webhook edited in the admin UI replaces the merchant object in
  // config.merchants while running (config/overlay.ts); the signer is cached per object.
  const signers = new WeakMap<object, { url: string; endpoint: string; sign: ReturnType<typeof createSigner> }>();
  const hooks = {
    get(merchantId: string) {
      const m = deps.merchants.find((x) => x.id === merchantId);
      if (!m?.webhook) return undefined;
      let h = signers.get(m.webhook);
      if (!h) signers.set(m.webhook, (h = { url: m.webhook.url, endpoint: endpointOf(m.webhook.url), sign: createSigner(m.webhook.secret) }));
      return h;
    },
  };

  async function post(url: string, body: string, headers: Record<string, string>): Promise<{ statusCode: number | null; error: string | null }> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), o.timeoutMs);
    try {
      // No redirects: a signed event goes to the configured URL or nowhere.
      const res = await deps.fetch(url, { method: 'POST', body, headers, redirect: 'manual', signal: ac.signal });
      await res.body?.cancel().catch(() => undefined);
      return { statusCode: res.status, error: res.status >= 200 && res.status < 300 ? null : `http_${res.status}` };
    } catch {
      return { statusCode: null, error: ac.signal.aborted ? 'timeout' : 'network' };
    } finally {
      clearTimeout(timer);
    }
  }

  async function deliver(ev: ClaimedEvent): Promise<void> {
    const hook = hooks.get(ev.merchantId);
    const startedAt = now();
    const base = { eventId: ev.id, leaseId: ev.leaseId, startedAt, now: startedAt };
    if (!hook) {
      await recordAttempt(db, { ...base, outcome: 'abandoned', endpoint: null, durationMs: 0, statusCode: null, error: 'no webhook configured', nextAt: null });
      return;
    }
    const body = JSON.stringify({ id: ev.id, type: ev.type, createdAt: ev.createdAt.toISOString(), data: ev.data });
    const t0 = performance.now();
    const res = await post(hook.url, body, {
      'content-type': 'application/json',
      'user-agent': 'wxbridge-webhooks/1',
      ...hook.sign(ev.id, new Date(startedAt), body),
    });
    if (dead) return;
    const durationMs = Math.round(performance.now() - t0);
    const t = now();
    let outcome: 'sent' | 'retry' | 'abandoned' = 'sent';
    let nextAt: number | null = null;
    if (res.error !== null) {
      nextAt = t + retryDelay(ev.attempts + 1, o.backoff, random);
      outcome = nextAt > ev.windowStart + o.windowMs ? 'abandoned' : 'retry';
    }
    const held = await recordAttempt(db, { ...base, outcome, endpoint: hook.endpoint, durationMs, statusCode: res.statusCode, error: res.error, nextAt, now: t });
    deps.onAttempt?.(outcome);
    log.info({ eventId: ev.id, type: ev.type, merchantId: ev.merchantId, outcome, status: res.statusCode, attempt: ev.attempts + 1, held }, 'webhook attempt');
  }

  const loop = createLeaseLoop<ClaimedEvent>({
    name: 'webhooks',
    log,
    batchSize: o.batchSize,
    maxInFlight: o.maxInFlight,
    pollMs: o.pollMs,
    maintainEveryMs: o.maintainEveryMs,
    claim: (limit) =>
      claimEvents(db, { now: now(), limit, perMerchant: o.maxInFlightPerMerchant, leaseId: randomUUID(), leaseMs: o.leaseMs, merchants: deps.merchants.map((m) => m.id) }),
    // Per event, so a slow endpoint holds its own slot only, not the rest of its batch.
    handleEach: (ev) => deliver(ev).catch((err: unknown) => log.error({ err, eventId: ev.id }, 'webhook attempt not recorded')),
    async maintain() {
      const endpoints = deps.merchants.flatMap((m) => {
        const hook = hooks.get(m.id);
        return hook ? [{ merchantId: m.id, endpoint: hook.endpoint }] : [];
      });
      const n = await reapExpiredEvents(db, { now: now(), limit: 1000, backoff: o.backoff, windowMs: o.windowMs, leaseMs: o.leaseMs, endpoints });
      if (n.requeued + n.abandoned > 0) log.info(n, 'took back expired webhook leases');
    },
  });
  return {
    ...loop,
    abandon() {
      dead = true;
      loop.abandon();
    },
  };
}
