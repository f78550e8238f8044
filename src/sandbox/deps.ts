/**
 * What the sandbox's services and routes are given. Built once in `createSandbox`;
 * nothing here is a module-level singleton.
 */
import type { SandboxState } from './state.ts';

export interface SandboxLogger {
  info(...a: unknown[]): void;
  warn(...a: unknown[]): void;
}

/** Timers that `close()` can cancel and tests can await (`idle()`). */
export interface Scheduler {
  /** Run `task` after `delayMs`; its promise is tracked until it settles. */
  later(delayMs: number, task: () => Promise<unknown>): void;
  /** Track a promise started now (e.g. a push fired by an HTTP handler). */
  track(p: Promise<unknown>): void;
  idle(): Promise<void>;
  /** Drop pending timers (reset). */
  cancel(): void;
  /** Drop pending timers and refuse new ones. */
  close(): void;
}

export interface SandboxDeps {
  /** Mutated in place by `reset()`, so references stay valid. */
  state: SandboxState;
  now: () => number;
  /** Mixed into derived openids/unionids (separates parallel test runs). */
  salt: string;
  basePath: string;
  logger: SandboxLogger;
  scheduler: Scheduler;
}

export function createScheduler(logger: SandboxLogger): Scheduler {
  /** Pending timers and the release of the promise idle() waits on for each. */
  const timers = new Map<NodeJS.Timeout, () => void>();
  const inflight = new Set<Promise<unknown>>();
  let closed = false;
  const track = (p: Promise<unknown>): void => {
    const guarded = p.catch((err: unknown) => logger.warn({ err }, 'sandbox background task failed'));
    inflight.add(guarded);
    void guarded.finally(() => inflight.delete(guarded));
  };
  return {
    later(delayMs, task) {
      if (closed) return;
      let release: () => void = () => {};
      track(new Promise<void>((resolve) => (release = resolve)));
      const t = setTimeout(() => {
        timers.delete(t);
        track(task());
        release();
      }, delayMs);
      timers.set(t, release);
    },
    track,
    async idle() {
      while (inflight.size > 0) await Promise.all([...inflight]);
    },
    cancel() {
      for (const [t, release] of timers) {
        clearTimeout(t);
        release();
      }
      timers.clear();
    },
    close() {
      closed = true;
      this.cancel();
    },
  };
}
