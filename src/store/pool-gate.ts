/**
 * The wait for a pooled connection, apart from connecting (SECURITY.md D1). `pg`'s Pool has
 * one `connectionTimeoutMillis` for both: with it at 1 s, a burst that keeps every
 * connection busy for a moment made queued requests fail with 503 although the database was
 * up (measured in test/linking/concurrency.test.ts on a loaded machine). So callers queue
 * here, FIFO, for one of `max` permits, for up to `waitMs`; the pool is only asked for a
 * client with a permit in hand, so it never queues, and its timeout means "connect" only.
 * - A full queue (`maxWaiting`) or a spent budget → DependencyUnavailableError at once (503).
 * - A database that is down fails everyone waiting at the first connection error, rather
 *   than letting each waiter find out by itself, one connect timeout after another.
 */
import { DependencyUnavailableError } from '../http/errors.ts';
import { withDeadline } from './deadline.ts';

export interface PoolGateStats {
  /** Acquisitions that had to wait, and how long the longest waited (ms). */
  waited: number;
  maxWaitMs: number;
  totalWaitMs: number;
  /** Refused: queue full, budget spent, or failed with the database. */
  queueFull: number;
  timedOut: number;
  failedDown: number;
  /** Now. */
  inUse: number;
  waiting: number;
}

export interface PoolGate {
  acquire(): Promise<void>;
  release(): void;
  /** Rejects every waiter: the database is not answering. */
  failWaiting(cause: unknown): void;
  stats(): PoolGateStats;
}

interface Waiter {
  grant(): void;
  fail(err: Error): void;
}

export interface PoolGateOptions {
  max: number;
  waitMs: number;
  maxWaiting: number;
  /** Who is unavailable when a caller gives up; also gates calls to a merchant (bulkhead). */
  dependency?: DependencyUnavailableError['dependency'];
  /** What callers wait for, for the error's cause. */
  what?: string;
}

export function createPoolGate(opts: PoolGateOptions): PoolGate {
  const dependency = opts.dependency ?? 'db';
  const what = opts.what ?? 'database connection';
  let inUse = 0;
  const queue: Waiter[] = [];
  const s = { waited: 0, maxWaitMs: 0, totalWaitMs: 0, queueFull: 0, timedOut: 0, failedDown: 0 };

  return {
    acquire() {
      if (inUse < opts.max && queue.length === 0) {
        inUse += 1;
        return Promise.resolve();
      }
      if (queue.length >= opts.maxWaiting) {
        s.queueFull += 1;
        return Promise.reject(new DependencyUnavailableError(dependency, new Error(`${queue.length} requests already wait for a ${what}`)));
      }
      const t0 = performance.now();
      let waiter: Waiter | undefined;
      const granted = new Promise<void>((resolve, reject) => {
        waiter = {
          grant() {
            const ms = performance.now() - t0;
            s.waited += 1;
            s.totalWaitMs += ms;
            s.maxWaitMs = Math.max(s.maxWaitMs, ms);
            resolve();
          },
          fail(err) {
            s.failedDown += 1;
            reject(err);
          },
        };
        queue.push(waiter);
      });
      // A release that is already on its way (in I/O) still wins over the deadline (deadline.ts).
      return withDeadline(granted, opts.waitMs, () => {
        const i = queue.indexOf(waiter as Waiter);
        if (i >= 0) queue.splice(i, 1);
        s.timedOut += 1;
        return new DependencyUnavailableError(dependency, new Error(`no ${what} free within ${opts.waitMs} ms`));
      });
    },
    release() {
      // The permit passes straight to the next waiter, so nobody can jump the queue.
      const next = queue.shift();
      if (next) next.grant();
      else inUse -= 1;
    },
    failWaiting(cause) {
      for (const w of queue.splice(0)) w.fail(new DependencyUnavailableError(dependency, cause));
    },
    stats: () => ({ ...s, maxWaitMs: Math.round(s.maxWaitMs), totalWaitMs: Math.round(s.totalWaitMs), inUse, waiting: queue.length }),
  };
}
