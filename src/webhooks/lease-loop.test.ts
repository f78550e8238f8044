/**
 * The shared worker loop: claims only what it has room for, hands batches over without
 * waiting, polls when idle, and stops cleanly (issue 7 "Workers").
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createLeaseLoop } from './lease-loop.ts';

const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('lease loop', () => {
  it('When work is queued, then batches are claimed up to maxInFlight and handled concurrently; stop waits for them', async () => {
    let queue = 25;
    const limits: number[] = [];
    let inFlight = 0;
    let peak = 0;
    const handled: number[] = [];
    const loop = createLeaseLoop<number>({
      name: 't',
      log,
      batchSize: 4,
      maxInFlight: 8,
      pollMs: 5,
      maintainEveryMs: 1_000,
      claim: async (limit) => {
        limits.push(limit);
        const n = Math.min(limit, queue);
        queue -= n;
        return Array.from({ length: n }, (_, i) => i);
      },
      handle: async (batch) => {
        inFlight += batch.length;
        peak = Math.max(peak, inFlight);
        await sleep(20);
        inFlight -= batch.length;
        handled.push(batch.length);
      },
    });
    loop.start();
    while (queue > 0) await sleep(5);
    await loop.stop();
    expect(handled.reduce((a, b) => a + b, 0)).toBe(25);
    expect(peak).toBeLessThanOrEqual(8);
    expect(peak).toBeGreaterThan(4);
    expect(Math.max(...limits)).toBeLessThanOrEqual(4);
  });

  it('When a claim fails, then the loop keeps going; when maintenance fails, it is logged and retried', async () => {
    let claims = 0;
    let maint = 0;
    const loop = createLeaseLoop<number>({
      name: 't',
      log,
      batchSize: 1,
      maxInFlight: 1,
      pollMs: 5,
      maintainEveryMs: 10,
      errorBackoffMs: 5,
      claim: async () => {
        claims++;
        if (claims < 3) throw new Error('db down');
        return [];
      },
      maintain: async () => {
        maint++;
        throw new Error('also down');
      },
      handle: async () => undefined,
    });
    loop.start();
    await sleep(80);
    await loop.stop();
    expect(claims).toBeGreaterThan(3);
    expect(maint).toBeGreaterThan(1);
  });

  it('When idle, then wake() makes it claim at once instead of at the next poll', async () => {
    const at: number[] = [];
    const loop = createLeaseLoop<number>({
      name: 't',
      log,
      batchSize: 1,
      maxInFlight: 1,
      pollMs: 10_000,
      maintainEveryMs: 60_000,
      claim: async () => {
        at.push(Date.now());
        return [];
      },
      handle: async () => undefined,
    });
    loop.start();
    await sleep(20);
    loop.wake();
    await sleep(20);
    const stopping = loop.stop();
    await stopping;
    expect(at.length).toBeGreaterThanOrEqual(2);
  });

  it('When wake() comes while a claim is running, then the loop claims again at once instead of sleeping a poll', async () => {
    let claims = 0;
    let secondAt = 0;
    let wokeAt = 0;
    const loop = createLeaseLoop<number>({
      name: 't',
      log,
      batchSize: 10,
      maxInFlight: 10,
      pollMs: 10_000,
      maintainEveryMs: 60_000,
      claim: async () => {
        claims++;
        if (claims === 1) {
          // New work is announced after this claim looked at the queue but before it returned.
          await sleep(5);
          wokeAt = Date.now();
          loop.wake();
          await sleep(5);
        } else if (claims === 2) secondAt = Date.now();
        return [];
      },
      handle: async () => undefined,
    });
    loop.start();
    await sleep(100);
    await loop.stop();
    expect(claims).toBe(2);
    expect(secondAt - wokeAt).toBeLessThan(1_000);
  });

  it('When items are handled one by one, then a slow item holds only its own slot and the others are claimed past it', async () => {
    let queue = 12;
    let slowDone = false;
    let handledBeforeSlow = 0;
    const loop = createLeaseLoop<number>({
      name: 't',
      log,
      batchSize: 4,
      maxInFlight: 4,
      pollMs: 5,
      maintainEveryMs: 1_000,
      claim: async (limit) => {
        const n = Math.min(limit, queue);
        queue -= n;
        return Array.from({ length: n }, (_, i) => queue + i);
      },
      handleEach: async (item) => {
        if (item === 11) {
          await sleep(300);
          slowDone = true;
        } else {
          await sleep(5);
          if (!slowDone) handledBeforeSlow++;
        }
      },
    });
    loop.start();
    while (queue > 0) await sleep(5);
    await loop.stop();
    expect(slowDone).toBe(true);
    // Batch-held slots would have waited 300 ms for the slow item before claiming again.
    expect(handledBeforeSlow).toBe(11);
  });
});
