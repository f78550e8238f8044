/**
 * Taking back the leases of dead webhook workers (DESIGN.md "Webhooks": retried with backoff
 * for a day, at-least-once). Found in review: the reaper put an expired event back in the
 * queue, due at once, without counting the attempt or checking the retry window, so an event
 * that killed its worker every time was retried for ever. Driven through the queries with a
 * clock of the test's own, so a day of crashes takes milliseconds.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/store/db.ts';
import { migrate } from '../../src/store/migrate.ts';
import { enqueueWebhookEvent } from '../../src/webhooks/events.ts';
import { claimEvents, findEvent, listAttempts, reapExpiredEvents } from '../../src/webhooks/webhooks.queries.ts';
import { primaryDb } from '../helpers/stores.ts';

let db: Db;
beforeAll(async () => {
  db = await primaryDb.create();
  await migrate(db);
});
afterAll(async () => {
  if (db) await primaryDb.dispose(db);
});

const leaseMs = 60_000;
const backoff = { baseMs: 5_000, capMs: 3600_000 };
const windowMs = 24 * 3600_000;

describe('webhook lease recovery', () => {
  it('When an event kills its worker on every attempt, then each lost lease counts as a logged attempt with backoff, and the event is abandoned after its window', async () => {
    const merchant = `m-${randomBytes(4).toString('hex')}`;
    const endpoint = `https://hooks.example/${merchant}`;
    const eventId = await db.transaction((tx) => enqueueWebhookEvent(tx, { merchantId: merchant, type: 'binding.created', data: {} }));
    const created = (await findEvent(db, eventId))!.createdAt.getTime();
    // +1: the database keeps microseconds, a Date only milliseconds.
    let now = created + 1;
    let crashes = 0;
    for (;;) {
      const claimed = await claimEvents(db, { now, limit: 10, perMerchant: 20, leaseId: randomUUID(), leaseMs, merchants: [merchant] });
      if (claimed.length === 0) break;
      expect(claimed.map((e) => e.id)).toEqual([eventId]);
      // The worker dies; its lease ends; another worker's housekeeping takes the event back.
      now += leaseMs + 1;
      const reaped = await reapExpiredEvents(db, { now, limit: 1000, backoff, windowMs, leaseMs, endpoints: [{ merchantId: merchant, endpoint }] });
      crashes++;
      const ev = (await findEvent(db, eventId))!;
      expect(ev).toMatchObject({ attempts: crashes, lastError: 'lease_expired', lastStatus: null });
      if (ev.status === 'abandoned') {
        expect(reaped).toEqual({ requeued: 0, abandoned: 1 });
        break;
      }
      expect(reaped).toEqual({ requeued: 1, abandoned: 0 });
      // It waits the same backoff as a failed attempt (5 s, 10 s, … an hour, ±20 %), not zero.
      const delay = ev.nextAttemptAt.getTime() - now;
      const expected = Math.min(backoff.capMs, backoff.baseMs * 2 ** (crashes - 1));
      expect(delay).toBeGreaterThanOrEqual(expected * 0.8 - 1);
      expect(delay).toBeLessThanOrEqual(expected * 1.2 + 1);
      // Before its time it is not claimed again.
      expect(await claimEvents(db, { now: now + delay - 1, limit: 10, perMerchant: 20, leaseId: randomUUID(), leaseMs, merchants: [merchant] })).toEqual([]);
      now += delay;
      expect(crashes).toBeLessThan(100);
    }
    const ev = (await findEvent(db, eventId))!;
    expect(ev.status).toBe('abandoned');
    expect(now).toBeLessThanOrEqual(created + windowMs + backoff.capMs * 1.2 + leaseMs);
    expect(now).toBeGreaterThan(created + windowMs - backoff.capMs * 1.2 - leaseMs);
    const log = await listAttempts(db, eventId);
    expect(log).toHaveLength(crashes);
    expect(log.map((x) => x.attempt)).toEqual(log.map((_, i) => i + 1));
    expect(log.every((x) => x.endpoint === endpoint && x.error === 'lease_expired' && x.statusCode === null)).toBe(true);
    expect(log.map((x) => x.outcome)).toEqual([...Array<string>(crashes - 1).fill('retry'), 'abandoned']);
  });

  it('When a lease has not expired yet, then the reaper leaves the event with its worker', async () => {
    const merchant = `m-${randomBytes(4).toString('hex')}`;
    const eventId = await db.transaction((tx) => enqueueWebhookEvent(tx, { merchantId: merchant, type: 'binding.created', data: {} }));
    const now = (await findEvent(db, eventId))!.createdAt.getTime() + 1;
    await claimEvents(db, { now, limit: 10, perMerchant: 20, leaseId: randomUUID(), leaseMs, merchants: [merchant] });
    await reapExpiredEvents(db, { now: now + leaseMs - 1, limit: 1000, backoff, windowMs, leaseMs, endpoints: [] });
    expect(await findEvent(db, eventId)).toMatchObject({ status: 'processing', attempts: 0 });
  });
});
