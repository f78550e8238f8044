/**
 * The notice worker (issue 7): claims due deliveries in batches under leases, decides per
 * delivery what may go out now, sends, and writes outcomes back in coalesced batches. Any
 * number of dispatchers on any number of machines share the queue; one that dies leaves
 * leases that the others' housekeeping takes back (`reapExpiredLeases`).
 *
 * Per batch: quiet hours → per-account pauses and the shared per-second limiter → the
 * per-user daily cap → the channel plan (customer-service only if the window's quota could
 * be taken) → one write of the customer-service intents → the sends. No database
 * transaction is open while WeChat is called (STYLE.md rule 5).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Db } from '../store/db.ts';
import { createLeaseLoop, type LeaseLoop } from '../webhooks/lease-loop.ts';
import { claimDeliveries, markCustomerServiceIntent, NOTICES_CHANNEL, reapExpiredLeases, writeOutcomes, type OutcomeRow } from './deliveries.queries.ts';
import { createFlusher } from './flusher.ts';
import type { Governor } from './governor.ts';
import { applyTemplateReports } from './notices.queries.ts';
import type { ClaimedDelivery, CsWindowPort, Outcome } from './notices.types.ts';
import { channelsFor, type MerchantDirectory, type MerchantNotices } from './policy.ts';
import { localDay, quietUntil } from './schedule.ts';
import type { Send, SendPlan } from './send.ts';

export interface DispatcherOptions {
  batchSize: number;
  /** Deliveries claimed and not yet settled, per dispatcher. */
  maxInFlight: number;
  /** WeChat calls at once, per dispatcher. */
  concurrency: number;
  pollMs: number;
  leaseMs: number;
  /** The WeChat client's timeout: no send starts unless it can finish inside the lease. */
  sendTimeoutMs: number;
  maintainEveryMs: number;
  dependencyRetryMs: number;
  /** How long an early TEMPLATESENDJOBFINISH report waits for its send to be recorded. */
  reportKeepMs: number;
}

export interface DispatcherDeps {
  db: Db;
  log: Logger;
  now: () => number;
  merchants: MerchantDirectory;
  /** Merchant ids of the config: the only deliveries this worker claims. */
  knownMerchants: string[];
  webhookMerchants: string[];
  governor: Governor;
  csWindow: CsWindowPort;
  send: Send;
  options: DispatcherOptions;
  onOutcome?: (o: Outcome) => void;
}

export interface Dispatcher extends LeaseLoop {
  /** Writes what is pending; part of a graceful stop. */
  flush(): Promise<void>;
}

type Plan = { d: ClaimedDelivery; plan: SendPlan; capDay: string | null };
type Admitted = { d: ClaimedDelivery; m: MerchantNotices; capDay: string | null; paused: { template: number; custom: number } };

export const LEASE_MARGIN_MS = 1_000;

/** Whether an outcome came from a call to WeChat (as counted in `attempts`). */
const madeCall = (o: Outcome): boolean => o.status === 'sent' || o.status === 'delivered' || o.attempted;

/** Whether an outcome proves that no message reached the user (a daily-cap count may be given back). */
const nothingWentOut = (o: Outcome): boolean => o.status === 'failed' || (o.status === 'queued' && (o.ambiguousSince ?? null) === null);

/** A lease must hold a customer-service call and its template fallback, with room to spare. */
export function checkLeaseOptions(o: Pick<DispatcherOptions, 'leaseMs' | 'sendTimeoutMs'>): void {
  if (o.leaseMs < 2 * o.sendTimeoutMs + 2 * LEASE_MARGIN_MS) {
    throw new Error(`notices: leaseMs (${o.leaseMs}) must be at least 2 × sendTimeoutMs + ${2 * LEASE_MARGIN_MS} ms`);
  }
}

export function createDispatcher(deps: DispatcherDeps): Dispatcher {
  const { db, log, now, governor, options: o } = deps;
  checkLeaseOptions(o);
  const flusher = createFlusher<OutcomeRow>({
    log,
    giveUpMs: o.leaseMs,
    gatherMs: 10,
    write: async (rows) => {
      const written = await writeOutcomes(db, rows, { now: now(), webhookMerchants: deps.webhookMerchants });
      if (written.length < rows.length) log.warn({ lost: rows.length - written.length }, 'leases lost before outcomes were written');
    },
  });
  let slots = o.concurrency;
  const waiting: (() => void)[] = [];
  const acquire = () => (slots > 0 ? (slots--, Promise.resolve()) : new Promise<void>((r) => waiting.push(r)));
  const release = () => (waiting.length ? waiting.shift()?.() : slots++);

  function settle(d: ClaimedDelivery, outcome: Outcome, attemptedAt: number | null = null): void {
    deps.onOutcome?.(outcome);
    flusher.add({ id: d.id, leaseId: d.leaseId, outcome, attemptedAt: attemptedAt !== null && madeCall(outcome) ? attemptedAt : null });
  }
  const later = (nextAt: number): Outcome => ({ status: 'queued', nextAt, attempted: false });
  /** Never start calls that could outlive the lease: another worker may own the delivery by then. */
  const leaseFits = (d: ClaimedDelivery, calls: number) => d.leaseUntil - now() >= calls * o.sendTimeoutMs + LEASE_MARGIN_MS;

  /** Quiet hours, pauses, the limiter and the cap; returns what may be sent now. */
  async function admit(batch: ClaimedDelivery[]): Promise<Admitted[]> {
    const t = now();
    const byApp = new Map<string, { d: ClaimedDelivery; m: MerchantNotices }[]>();
    for (const d of batch) {
      const m = deps.merchants(d.merchantId);
      if (!m) {
        settle(d, { status: 'failed', channel: null, errcode: null, error: 'merchant_not_configured', attempted: false });
        continue;
      }
      const quiet = quietUntil(t, m.quietHours);
      if (quiet !== null) settle(d, later(quiet));
      else {
        const items = byApp.get(d.appId);
        if (items) items.push({ d, m });
        else byApp.set(d.appId, [{ d, m }]);
      }
    }
    const admitted: Admitted[] = [];
    for (const [appId, items] of byApp) {
      let granted: number;
      let paused: { template: number; custom: number };
      try {
        // One round trip, not two: the reservation was made whatever the pauses say anyway.
        const [template, custom, reserved] = await Promise.all([governor.pausedUntil(appId, 'template'), governor.pausedUntil(appId, 'custom'), governor.reserve(appId, items.length)]);
        paused = { template, custom };
        granted = reserved;
      } catch (err) {
        log.warn({ err, appId }, 'shared limiter unavailable; deliveries wait');
        for (const { d } of items) settle(d, later(t + o.dependencyRetryMs));
        continue;
      }
      for (const { d } of items.slice(granted)) settle(d, later(Math.floor(t / 1000) * 1000 + 1000));
      await Promise.all(
        items.slice(0, granted).map(async ({ d, m }) => {
          let capDay: string | null = null;
          if (m.perUserDailyCap !== undefined && d.ambiguousSince === null) {
            capDay = localDay(t, m.timeZone);
            const ok = await governor.takeDaily(m.merchantId, d.identityId, capDay, m.perUserDailyCap).catch(() => null);
            if (ok === null) return settle(d, later(t + o.dependencyRetryMs));
            if (!ok) return settle(d, { status: 'failed', channel: null, errcode: null, error: 'daily_cap', attempted: false });
          }
          admitted.push({ d, m, capDay, paused });
        }),
      );
    }
    return admitted;
  }

  /** Channel plan; a customer-service send is planned only when the window's quota was taken. */
  async function plan(item: Admitted): Promise<Plan | Outcome> {
    const { d, m, capDay, paused } = item;
    const ch = channelsFor(m, d.notice);
    // Checked before the window's quota is taken: a send that could outlive the lease waits.
    if (!leaseFits(d, ch.cs ? 2 : 1)) return later(now());
    // A template send that may have gone out is retried as a template only (same client_msg_id).
    const forceTemplate = d.ambiguousSince !== null && ch.template;
    const template = ch.template && !paused.template;
    let useCs = false;
    if (ch.cs && !forceTemplate && !paused.custom) useCs = await deps.csWindow.tryConsume(d.appId, d.openid).catch(() => false);
    if (!useCs && !template) {
      if (ch.template && paused.template) return later(paused.template);
      if (ch.cs && paused.custom) return later(paused.custom);
      if (ch.cs) return { status: 'failed', channel: 'customer-service', errcode: null, error: 'window_closed', attempted: false };
      return { status: 'failed', channel: null, errcode: null, error: 'no_channel', attempted: false };
    }
    return { d, capDay, plan: { merchant: m, channels: ch, useCs } };
  }

  async function sendOne(p: Plan): Promise<void> {
    await acquire();
    let outcome: Outcome;
    let startedAt: number | null = null;
    try {
      if (leaseFits(p.d, p.plan.useCs ? 2 : 1)) {
        startedAt = now();
        outcome = await deps.send(p.d, p.plan);
      } else outcome = later(now());
    } finally {
      release();
    }
    await finish(p, outcome, startedAt);
  }

  /**
   * Settles a delivery that passed the daily cap, giving the count back only if no message
   * can have reached the user. A template send whose answer was lost (`ambiguousSince`) may
   * have been delivered, and its retry skips the cap (`admit`): it keeps the count it took.
   */
  async function finish(p: { d: ClaimedDelivery; capDay: string | null }, outcome: Outcome, attemptedAt: number | null = null): Promise<void> {
    if (p.capDay !== null && nothingWentOut(outcome)) {
      await governor.refundDaily(p.d.merchantId, p.d.identityId, p.capDay).catch(() => undefined);
    }
    settle(p.d, outcome, attemptedAt);
  }

  async function handle(batch: ClaimedDelivery[]): Promise<void> {
    const admitted = await admit(batch);
    const plans: Plan[] = [];
    await Promise.all(
      admitted.map(async (item) => {
        const p = await plan(item);
        if ('plan' in p) plans.push(p);
        else await finish(item, p);
      }),
    );
    const cs = plans.filter((p) => p.plan.useCs);
    let ready = plans;
    try {
      await markCustomerServiceIntent(db, cs.map((p) => p.d.id), batch[0]?.leaseId ?? '');
    } catch (err) {
      // Without the intent on record a killed worker could not tell these apart: they wait.
      log.warn({ err }, 'could not record customer-service intents; those deliveries wait');
      await Promise.all(cs.map((p) => finish(p, later(now() + o.dependencyRetryMs))));
      ready = plans.filter((p) => !p.plan.useCs);
    }
    await Promise.all(ready.map(sendOne));
  }

  const loop = createLeaseLoop<ClaimedDelivery>({
    name: 'notices',
    log,
    batchSize: o.batchSize,
    maxInFlight: o.maxInFlight,
    pollMs: o.pollMs,
    maintainEveryMs: o.maintainEveryMs,
    claim: (limit) => claimDeliveries(db, { now: now(), limit, leaseId: randomUUID(), leaseMs: o.leaseMs, merchants: deps.knownMerchants, webhookMerchants: deps.webhookMerchants }),
    handle,
    async maintain() {
      const reaped = await reapExpiredLeases(db, { now: now(), limit: 1000 });
      if (reaped.requeued + reaped.unknown > 0) log.info(reaped, 'took back expired delivery leases');
      await applyTemplateReports(db, { now: now(), keepMs: o.reportKeepMs, webhookMerchants: deps.webhookMerchants });
    },
  });

  // New deliveries are announced with NOTIFY (createAnnouncer): claim them at once, not at the next poll.
  let unlisten: (() => Promise<void>) | undefined;
  return {
    ...loop,
    start() {
      loop.start();
      unlisten ??= db.listen?.(NOTICES_CHANNEL, loop.wake);
    },
    async stop() {
      await unlisten?.();
      await loop.stop();
      await flusher.drain();
    },
    abandon() {
      void unlisten?.();
      loop.abandon();
      flusher.drop();
    },
    flush: () => flusher.drain(),
  };
}
