/**
 * Keeps every instance's live config in step with admin_config_items: a cheap fingerprint
 * query every `intervalMs` (2 s by default), and a full reload only when it changed. The
 * database is the source of truth, so no change can be missed the way a lost
 * notification could be; the instance that made a change reloads at once. An overlay
 * that no longer validates (it cannot be written so, but a file edit can break it) is
 * logged and the last good config is kept, rather than stopping the service.
 */
import type { Logger } from 'pino';
import type { SecretBox } from '../security/secret-box.ts';
import type { Db } from '../store/db.ts';
import { effectiveConfig, formatProblem, type LiveConfig } from './overlay.ts';
import { listOverlayItems, overlayFingerprint } from './overlay.queries.ts';

export interface ConfigSync {
  readonly live: LiveConfig;
  /** Reads the overlay and applies it now; the problems when it does not validate. */
  reload(): Promise<string[]>;
  start(): void;
  stop(): Promise<void>;
}

export function createConfigSync(deps: { db: Db; secrets: SecretBox; log: Logger; live: LiveConfig; intervalMs?: number }): ConfigSync {
  const log = deps.log.child({ component: 'config-overlay' });
  let seen: string | null = null;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();

  async function load(): Promise<string[]> {
    const fingerprint = await overlayFingerprint(deps.db);
    const items = await listOverlayItems(deps.db, deps.secrets);
    const eff = effectiveConfig(deps.live.file, items);
    seen = fingerprint;
    if (!eff.ok) {
      // The problems name fields, never values: no secret reaches the log.
      const problems = eff.problems.map(formatProblem);
      log.error({ problems }, 'config overlay does not validate; keeping the last good config');
      return problems;
    }
    deps.live.apply(eff.items);
    return [];
  }

  // One load at a time: a poll and an admin's save never interleave their applies.
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = running.then(fn, fn);
    running = next.catch(() => undefined);
    return next;
  };

  async function tick(): Promise<void> {
    try {
      if ((await overlayFingerprint(deps.db)) !== seen) await serial(load);
    } catch (err) {
      log.warn({ err }, 'config overlay poll failed');
    }
  }

  return {
    live: deps.live,
    reload: () => serial(load),
    start() {
      timer ??= setInterval(() => void tick(), deps.intervalMs ?? 2_000);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
}
