/**
 * The worker loop shared by the notice dispatcher and the webhook sender (DESIGN.md
 * "Inside": claimed with FOR UPDATE SKIP LOCKED leases). It keeps up to `maxInFlight`
 * claimed items in hand: it claims a batch whenever there is room for one, hands it to
 * `handle` (or each item to `handleEach`) without waiting for it, and polls when the queue
 * is empty. Housekeeping (expired leases) runs every `maintainEveryMs`. A claim that fails
 * (database down) is retried after a pause; nothing is lost, because nothing is claimed.
 */
import type { Logger } from 'pino';

interface LeaseLoopBase<T> {
  name: string;
  log: Logger;
  claim(limit: number): Promise<T[]>;
  maintain?(): Promise<void>;
  batchSize: number;
  maxInFlight: number;
  pollMs: number;
  maintainEveryMs: number;
  errorBackoffMs?: number;
}

export type LeaseLoopOptions<T> = LeaseLoopBase<T> &
  (
    | {
        /** Handles a claimed batch; its items count as in flight until it settles. */
        handle(batch: T[]): Promise<void>;
      }
    | {
        /**
         * Handles one claimed item; it counts as in flight until its own handling settles, so
         * one slow item holds one slot, not its whole batch (webhooks: a hanging endpoint).
         */
        handleEach(item: T): Promise<void>;
      }
  );

export interface LeaseLoop {
  start(): void;
  /** Stops claiming and waits for the batches in hand. */
  stop(): Promise<void>;
  /** Stops claiming at once and forgets the batches in hand (a killed process, for tests). */
  abandon(): void;
  /**
   * Claims now instead of at the next poll (new work was enqueued: here, or elsewhere and
   * announced by the database). Called while a claim runs, it makes the loop claim again
   * right after instead of sleeping.
   */
  wake(): void;
}

export function createLeaseLoop<T>(o: LeaseLoopOptions<T>): LeaseLoop {
  let state: 'new' | 'running' | 'stopping' | 'done' = 'new';
  let inFlight = 0;
  const batches = new Set<Promise<void>>();
  let loop: Promise<void> | undefined;
  let wakeUp: (() => void) | undefined;
  // Only a loop that waits for room is woken by a settling batch; an idle one polls, so a
  // drained queue is not asked again after every batch.
  let waitingForRoom = false;

  // A wake-up that comes while the loop is busy (a claim in progress) is kept for its next
  // sleep: work enqueued just after a claim's snapshot would otherwise wait a whole poll.
  let wakePending = false;
  const wake = () => {
    if (wakeUp) wakeUp();
    else wakePending = true;
  };
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (wakePending) {
        wakePending = false;
        return resolve();
      }
      const done = () => {
        clearTimeout(timer);
        wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      wakeUp = done;
    });

  async function maintain(): Promise<void> {
    try {
      await o.maintain?.();
    } catch (err) {
      o.log.warn({ err, worker: o.name }, 'worker housekeeping failed');
    }
  }

  /** Counts `n` items in flight until `work` settles; a settling one wakes a loop waiting for room. */
  function track(n: number, work: () => Promise<void>): void {
    inFlight += n;
    const p: Promise<void> = work()
      .catch((err: unknown) => o.log.error({ err, worker: o.name }, 'batch failed'))
      .finally(() => {
        inFlight -= n;
        batches.delete(p);
        if (waitingForRoom || state !== 'running') wake();
      });
    batches.add(p);
  }

  async function run(): Promise<void> {
    let lastMaintain = 0;
    while (state === 'running') {
      if (o.maintain && performance.now() - lastMaintain >= o.maintainEveryMs) {
        lastMaintain = performance.now();
        await maintain();
      }
      const room = o.maxInFlight - inFlight;
      if (room <= 0 || (inFlight > 0 && room < o.batchSize / 2)) {
        waitingForRoom = true;
        await sleep(o.pollMs);
        waitingForRoom = false;
        continue;
      }
      const limit = Math.min(o.batchSize, room);
      let batch: T[];
      try {
        batch = await o.claim(limit);
      } catch (err) {
        o.log.warn({ err, worker: o.name }, 'claim failed; retrying');
        await sleep(o.errorBackoffMs ?? 1_000);
        continue;
      }
      if ('handleEach' in o) for (const item of batch) track(1, () => o.handleEach(item));
      else if (batch.length > 0) track(batch.length, () => o.handle(batch));
      // A full batch means more may be due: claim again at once.
      if (batch.length < limit && state === 'running') await sleep(o.pollMs);
    }
  }

  return {
    start() {
      if (state !== 'new') return;
      state = 'running';
      loop = run();
    },
    async stop() {
      if (state === 'running') state = 'stopping';
      wake();
      await loop;
      while (batches.size > 0) await Promise.allSettled([...batches]);
      state = 'done';
    },
    abandon() {
      state = 'done';
      wake();
      batches.clear();
    },
    wake,
  };
}
