/**
 * Operations endpoints: liveness (the process answers), readiness (Db and Kv answer
 * within a bound; 503 when either is down, so a load balancer stops routing here) and
 * Prometheus metrics.
 */
import Router from '@koa/router';
import type { Db } from '../store/db.ts';
import type { Kv } from '../store/kv.ts';
import type { Metrics } from '../http/metrics.ts';
import { precomputed } from '../http/precomputed.ts';

const HEALTHY = { body: JSON.stringify({ status: 'ok' }), type: 'application/json; charset=utf-8' } as const;

export interface OpsDeps {
  db: Db;
  kv: Kv;
  metrics: Metrics;
  readyTimeoutMs?: number;
  /** Set while shutting down, so the balancer drains this instance first. */
  isDraining?: () => boolean;
}

async function check(fn: () => Promise<void>, timeoutMs: number): Promise<'ok' | 'down'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
      }),
    ]);
    return 'ok';
  } catch {
    return 'down';
  } finally {
    clearTimeout(timer);
  }
}

export function opsRoutes(deps: OpsDeps): Router {
  const router = new Router();
  const timeout = deps.readyTimeoutMs ?? 500;
  // Liveness is polled hard by balancers: a fixed body, served ahead of the routers.
  router.get(
    '/healthz',
    precomputed(() => HEALTHY),
  );
  router.get('/readyz', async (ctx) => {
    const [db, kv] = await Promise.all([check(() => deps.db.ping(), timeout), check(() => deps.kv.ping(), timeout)]);
    const draining = deps.isDraining?.() ?? false;
    const ok = db === 'ok' && kv === 'ok' && !draining;
    ctx.status = ok ? 200 : 503;
    ctx.body = { status: ok ? 'ready' : 'unavailable', checks: { db, kv }, ...(draining ? { draining: true } : {}) };
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });
  return router;
}
