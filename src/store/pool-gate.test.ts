/** The connection gate of db-pg.ts: FIFO, bounded wait, bounded queue, fail-all on an outage. */
import { describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../http/errors.ts';
import { createPoolGate } from './pool-gate.ts';

describe('pool gate', () => {
  it('When permits are free, then callers pass at once; when not, they wait in order and get the permit a caller releases', async () => {
    const gate = createPoolGate({ max: 2, waitMs: 1000, maxWaiting: 10 });
    await gate.acquire();
    await gate.acquire();
    const order: number[] = [];
    const a = gate.acquire().then(() => order.push(1));
    const b = gate.acquire().then(() => order.push(2));
    expect(gate.stats()).toMatchObject({ inUse: 2, waiting: 2 });
    gate.release();
    gate.release();
    await Promise.all([a, b]);
    expect(order).toEqual([1, 2]);
    expect(gate.stats()).toMatchObject({ inUse: 2, waiting: 0, waited: 2 });
    gate.release();
    gate.release();
    expect(gate.stats().inUse).toBe(0);
  });

  it('When nobody releases within the wait budget, then the waiter gets DependencyUnavailableError and leaves the queue', async () => {
    const gate = createPoolGate({ max: 1, waitMs: 30, maxWaiting: 10 });
    await gate.acquire();
    const t0 = Date.now();
    await expect(gate.acquire()).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
    expect(gate.stats()).toMatchObject({ timedOut: 1, waiting: 0 });
    gate.release();
    await gate.acquire(); // the permit was not lost
  });

  it('When the queue is full, then one more caller is refused at once', async () => {
    const gate = createPoolGate({ max: 1, waitMs: 1000, maxWaiting: 1 });
    await gate.acquire();
    const queued = gate.acquire();
    await expect(gate.acquire()).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(gate.stats().queueFull).toBe(1);
    gate.release();
    await queued;
  });

  it('When the database is found down, then every waiter fails at once with the cause', async () => {
    const gate = createPoolGate({ max: 1, waitMs: 10_000, maxWaiting: 10 });
    await gate.acquire();
    const waiting = [gate.acquire(), gate.acquire()];
    const cause = new Error('connect ECONNREFUSED');
    gate.failWaiting(cause);
    for (const w of waiting) await expect(w).rejects.toMatchObject({ dependency: 'db', cause });
    expect(gate.stats()).toMatchObject({ failedDown: 2, waiting: 0, inUse: 1 });
  });
});
