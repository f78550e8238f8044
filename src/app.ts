/**
 * createApp(deps): the middleware order and every feature's routes; no listen().
 * Order matters: request context first (id, logger), then the error handler (so it
 * sees every error with a logger), security headers, static files, mounted apps, the
 * precomputed documents (JWKS, discovery, /healthz), then the routers behind one dispatch step.
 */
import Koa from 'koa';
import type { Deps } from './deps.ts';
import { dispatchRouters } from './http/dispatch.ts';
import { errorHandler } from './http/error-handler.ts';
import { mountApp } from './http/mount.ts';
import { servePrecomputed } from './http/precomputed.ts';
import { requestContext } from './http/request-context.ts';
import { securityHeaders } from './http/security-headers.ts';
import { serveStatic } from './http/static.ts';
import { opsRoutes } from './ops/ops.routes.ts';

export interface AppOptions {
  isDraining?: () => boolean;
}

export function createApp(deps: Deps, opts: AppOptions = {}): Koa {
  const app = new Koa({ proxy: deps.config.trustProxy });
  app.keys = [deps.secrets.deriveKey('cookies').toString('base64url')];
  app.silent = true; // the error handler logs; Koa's default stderr dump would duplicate it
  app.use(requestContext({ log: deps.log, httpDuration: deps.metrics.httpDuration }));
  app.use(errorHandler({ views: deps.views }));
  app.use(securityHeaders({ https: deps.config.publicUrl.startsWith('https://'), extraImgSrc: deps.config.mode === 'demo' ? ['http:'] : [] }));
  app.use(serveStatic());
  if (deps.config.role !== 'worker') for (const m of deps.mounts) app.use(mountApp(m.prefix, m.app));
  const ops = opsRoutes({ db: deps.db, kv: deps.kv, metrics: deps.metrics, isDraining: opts.isDraining });
  // A worker node serves only the ops endpoints; its job is the background loops.
  const featureRouters = deps.config.role === 'worker' ? [] : deps.features.flatMap((f) => (f.routes ? [f.routes] : []));
  const routers = [ops, ...featureRouters];
  app.use(servePrecomputed(routers));
  app.use(dispatchRouters(routers, { allowedMethods: featureRouters.length > 0 }));
  return app;
}
