/**
 * When the Kv last failed, for a store that falls back to Postgres while it is down (push
 * claims, the plaintext replay guard; SECURITY.md D1). `degraded()` holds for one `windowMs`
 * after the last failure, the time a record made in Postgres during the outage may still be
 * asked for after the Kv is back. `noted(err)` rethrows anything but a Kv outage, notes the
 * outage, and logs its start once.
 */
import type { Logger } from 'pino';
import { DependencyUnavailableError } from '../http/errors.ts';

export interface KvOutage {
  degraded(): boolean;
  noted(err: unknown): void;
}

export function createKvOutage(o: { now: () => number; windowMs: number; log: Logger; component: string; fallback: string }): KvOutage {
  let failedAt = Number.NEGATIVE_INFINITY;
  const degraded = () => o.now() - failedAt < o.windowMs;
  return {
    degraded,
    noted(err) {
      if (!(err instanceof DependencyUnavailableError)) throw err;
      if (!degraded()) o.log.warn({ component: o.component }, `kv unavailable; ${o.fallback} falls back to Postgres`);
      failedAt = o.now();
    },
  };
}
