/**
 * Webhook delivery keeps merchants apart (DESIGN.md "Webhooks"): one merchant's slow or hanging
 * endpoint must not hold back the others' webhooks, and its own events are still retried and
 * delivered. Found in review: the sender claimed every merchant's due events in one queue under
 * a global in-flight cap and held a whole batch until its slowest POST ended, so a hanging
 * endpoint's backlog filled every slot for `timeoutMs` at a time. Now each event holds its own
 * slot and a merchant has at most `maxInFlightPerMerchant` events in flight across all workers.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileConfigSchema } from '../../src/config/schema.ts';
import type { Db } from '../../src/store/db.ts';
import { migrate } from '../../src/store/migrate.ts';
import { enqueueWebhookEvent } from '../../src/webhooks/events.ts';
import { createWebhooksFeature } from '../../src/webhooks/index.ts';
import { claimEvents } from '../../src/webhooks/webhooks.queries.ts';
import type { LeaseLoop } from '../../src/webhooks/lease-loop.ts';
import type { WebhookSenderOptions } from '../../src/webhooks/sender.ts';
import { primaryDb } from '../helpers/stores.ts';
import { listen, until } from '../notices/world.ts';

let db: Db;
let server: Awaited<ReturnType<typeof listen>>;
const sentAt = new Map<string, number>();
/** Paths whose requests are never answered (the sender's timeout ends them) while listed. */
const hanging = new Set<string>();

beforeAll(async () => {
  db = await primaryDb.create();
  await migrate(db);
  server = await listen((req, res) => {
    req.resume();
    req.on('end', () => {
      if (hanging.has(req.url ?? '')) return;
      sentAt.set(String(req.headers['webhook-id']), Date.now());
      res.end('ok');
    });
  });
});
afterAll(async () => {
  await server?.close();
  if (db) await primaryDb.dispose(db);
});

/** Merchants A and B with endpoints of their own, and a fetch that counts A's requests in flight. */
function twoMerchants(options: Partial<WebhookSenderOptions>) {
  const a = `m-a-${randomBytes(3).toString('hex')}`;
  const b = `m-b-${randomBytes(3).toString('hex')}`;
  const file = fileConfigSchema.parse({
    officialAccounts: [{ id: 'oa', appId: 'wx0123456789abcdef', appSecret: 'app-secret-1234', token: 'tok123', originalId: 'gh_0123456789' }],
    merchants: [
      { id: a, name: 'A', officialAccount: 'oa', linking: [{ type: 'binding-code' }], webhook: { url: `${server.url}/hooks/${a}`, secret: 'secret-aaaaaaaa' } },
      { id: b, name: 'B', officialAccount: 'oa', linking: [{ type: 'binding-code' }], webhook: { url: `${server.url}/hooks/${b}`, secret: 'secret-bbbbbbbb' } },
    ],
  });
  const inFlightA = { now: 0, peak: 0 };
  const counting: typeof fetch = async (input, init) => {
    const mine = String(input).endsWith(`/hooks/${a}`);
    if (mine) inFlightA.peak = Math.max(inFlightA.peak, ++inFlightA.now);
    try {
      return await fetch(input, init);
    } finally {
      if (mine) inFlightA.now--;
    }
  };
  const feature = createWebhooksFeature({ db, log: pino({ level: 'silent' }), config: file, fetch: counting, options });
  const enqueue = (merchantId: string, data: Record<string, unknown> = {}) =>
    db.transaction((tx) => enqueueWebhookEvent(tx, { merchantId, type: 'notice.delivered', data }));
  return { a, b, feature, enqueue, inFlightA, hangA: () => hanging.add(`/hooks/${a}`), answerA: () => hanging.delete(`/hooks/${a}`) };
}

describe('webhook isolation between merchants', () => {
  it("When merchant A's endpoint hangs with a backlog, then merchant B's webhook still goes out promptly", async () => {
    // Production shape scaled down: 200 in flight, batches of 50, 20 per merchant, 10 s timeout
    // → 4, 4, 2 and 500 ms. Before the fix B waited ~1.7 s: three rounds of A's timeout.
    const timeoutMs = 500;
    const m = twoMerchants({ pollMs: 10, leaseMs: 5_000, timeoutMs, maintainEveryMs: 100, backoff: { baseMs: 5_000, capMs: 60_000 }, windowMs: 3600_000, batchSize: 4, maxInFlight: 4, maxInFlightPerMerchant: 2 });
    m.hangA();
    // A bulk notice made many notice.* events for A (e.g. one per delivery); then B's binding is revoked.
    for (let i = 0; i < 12; i++) await m.enqueue(m.a, { i });
    const bEvent = await m.enqueue(m.b);
    const sender = m.feature.createSender();
    const t0 = Date.now();
    sender.start();
    try {
      await until(async () => sentAt.has(bEvent), 15_000);
    } finally {
      sender.abandon();
      m.answerA();
    }
    expect(sentAt.get(bEvent)! - t0).toBeLessThan(timeoutMs);
  });

  it('When A hangs for a while, then across two workers A never has more than its cap in flight, B keeps going out at once, and every A event is retried and delivered once A answers', async () => {
    // Long enough that a loaded machine (PGlite shares the test's CPU) does not pass for starvation.
    const timeoutMs = 1_000;
    const perMerchant = 2;
    const m = twoMerchants({ pollMs: 10, leaseMs: 5_000, timeoutMs, maintainEveryMs: 100, backoff: { baseMs: 100, capMs: 400 }, windowMs: 60_000, batchSize: 4, maxInFlight: 4, maxInFlightPerMerchant: perMerchant });
    m.hangA();
    const aEvents: string[] = [];
    for (let i = 0; i < 8; i++) aEvents.push(await m.enqueue(m.a, { i }));
    const senders: LeaseLoop[] = [m.feature.createSender(), m.feature.createSender()];
    for (const s of senders) s.start();
    try {
      // While A hangs, B's events keep going out well inside one of A's timeouts.
      const bWaits: number[] = [];
      for (let i = 0; i < 8; i++) {
        const queuedAt = Date.now();
        const id = await m.enqueue(m.b, { i });
        await until(async () => sentAt.has(id), 5_000, 5);
        bWaits.push(sentAt.get(id)! - queuedAt);
        await new Promise((r) => setTimeout(r, 150));
      }
      expect(Math.max(...bWaits)).toBeLessThan(timeoutMs);
      m.answerA();
      await until(async () => {
        for (const id of aEvents) if ((await m.feature.service.getEvent(id))?.status !== 'sent') return false;
        return true;
      }, 20_000);
    } finally {
      await Promise.all(senders.map((s) => s.stop()));
      m.answerA();
    }
    // The cap held across both workers, and A used it: it was not simply shut out.
    expect(m.inFlightA.peak).toBe(perMerchant);
    // No loss: every A event timed out at least once, then was retried with backoff and sent.
    let timedOut = 0;
    for (const id of aEvents) {
      const log = await m.feature.service.listAttempts(id);
      expect(log.at(-1)).toMatchObject({ outcome: 'sent', statusCode: 200 });
      expect(log.slice(0, -1).every((x) => x.outcome === 'retry' && x.error === 'timeout')).toBe(true);
      expect(log.map((x) => x.attempt)).toEqual(log.map((_, i) => i + 1));
      timedOut += log.length - 1;
      expect(sentAt.has(id)).toBe(true);
    }
    expect(timedOut).toBeGreaterThanOrEqual(perMerchant);
  });

  it("When a merchant already has its cap of events in flight, then a claim takes none of its due events but still takes other merchants'", async () => {
    const x = `m-x-${randomBytes(3).toString('hex')}`;
    const y = `m-y-${randomBytes(3).toString('hex')}`;
    for (let i = 0; i < 5; i++) {
      const id = await db.transaction((tx) => enqueueWebhookEvent(tx, { merchantId: x, type: 'notice.delivered', data: { i } }));
      // Distinct due times: events written within one clock tick would tie.
      await db.query(`UPDATE webhook_events SET next_attempt_at = now() - make_interval(secs => $2) WHERE id = $1`, [id, 5 - i]);
    }
    const claim = (now: number) => claimEvents(db, { now, limit: 10, perMerchant: 2, leaseId: randomUUID(), leaseMs: 60_000, merchants: [x, y] });
    const now = Date.now() + 1_000;
    const first = await claim(now);
    expect(first.map((e) => e.merchantId)).toEqual([x, x]);
    // The oldest due events go first.
    expect(first.map((e) => e.data)).toEqual([{ i: 0 }, { i: 1 }]);
    const yEvent = await db.transaction((tx) => enqueueWebhookEvent(tx, { merchantId: y, type: 'binding.revoked', data: {} }));
    expect((await claim(now)).map((e) => e.id)).toEqual([yEvent]);
    expect(await claim(now)).toEqual([]);
    // A lease that has expired (its worker died) no longer counts against the merchant.
    expect((await claim(now + 60_001)).map((e) => e.data)).toEqual([{ i: 2 }, { i: 3 }]);
  });
});
