/**
 * Work done after WeChat has been answered (a late reply as a customer-service message, a
 * location or last-interaction write): tracked so that shutdown and tests can wait for it,
 * and so that a failure is logged instead of becoming an unhandled rejection.
 */
import type { Logger } from 'pino';

export interface Tasks {
  run(name: string, fn: () => Promise<unknown>): void;
  /** Resolves when everything started so far has settled (bounded by `timeoutMs`). */
  idle(timeoutMs?: number): Promise<void>;
}

export function createTasks(log: Logger): Tasks {
  const running = new Set<Promise<unknown>>();
  return {
    run(name, fn) {
      const p = fn().catch((err: unknown) => log.warn({ err, task: name }, 'background task failed'));
      running.add(p);
      void p.finally(() => running.delete(p));
    },
    async idle(timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      while (running.size > 0 && Date.now() < until) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([Promise.allSettled([...running]), new Promise((r) => (timer = setTimeout(r, until - Date.now())))]);
        clearTimeout(timer);
      }
    },
  };
}
