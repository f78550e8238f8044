/**
 * Outcomes are written back in coalesced batches: every outcome that arrives while a write
 * is in progress goes into the next one, so a busy worker writes hundreds of rows per
 * statement and an idle one writes at once (issue 9: minimal SQL per delivery). A failed
 * write is retried until `giveUpMs`; past that the leases expire and the reaper decides.
 */
import type { Logger } from 'pino';

export interface Flusher<T> {
  add(row: T): void;
  /** Resolves when everything added so far is written (or given up). */
  drain(): Promise<void>;
  /** Forgets everything, as a killed process would (tests). */
  drop(): void;
}

export function createFlusher<T>(o: {
  write(rows: T[]): Promise<void>;
  log: Logger;
  giveUpMs: number;
  maxRows?: number;
  retryMs?: number;
  /** How long the first outcome waits for company before the write starts. */
  gatherMs?: number;
}): Flusher<T> {
  const maxRows = o.maxRows ?? 1000;
  let buffer: T[] = [];
  let running: Promise<void> | null = null;
  let dead = false;

  async function writeWithRetry(rows: T[]): Promise<void> {
    const deadline = performance.now() + o.giveUpMs;
    for (;;) {
      try {
        await o.write(rows);
        return;
      } catch (err) {
        if (dead || performance.now() >= deadline) {
          o.log.error({ err, rows: rows.length }, 'outcomes not written; leases will expire');
          return;
        }
        o.log.warn({ err, rows: rows.length }, 'writing outcomes failed; retrying');
        await new Promise((r) => setTimeout(r, o.retryMs ?? 200));
      }
    }
  }

  async function run(): Promise<void> {
    // Outcomes settling within a few milliseconds share one write (one statement, one commit).
    await new Promise((r) => (o.gatherMs ? setTimeout(r, o.gatherMs) : setImmediate(r)));
    while (buffer.length > 0 && !dead) {
      const rows = buffer.splice(0, maxRows);
      await writeWithRetry(rows);
    }
    running = null;
  }

  return {
    add(row) {
      if (dead) return;
      buffer.push(row);
      running ??= run();
    },
    async drain() {
      while (running) await running;
    },
    drop() {
      dead = true;
      buffer = [];
    },
  };
}
