/**
 * createApp(deps): the middleware order and every feature's routes; no listen().
 * Order matters: request context first (id, logger), then the error handler (so it
 * sees every error with a logger), security headers, the precomputed documents (JWKS,
 * discovery, /healthz), static files, mounted apps, then the routers behind one dispatch step.
 * In front of all of it, the app's request listener answers the precomputed documents' exact
 * paths itself (src/http/precomputed.ts frontDoor), with the same headers and metrics.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import Koa from 'koa';
import type { Deps } from './deps.ts';
import { dispatchRouters } from './http/dispatch.ts';
import { errorHandler } from './http/error-handler.ts';
import { mountApp } from './http/mount.ts';
import { frontDoor, servePrecomputed } from './http/precomputed.ts';
import { requestContext } from './http/request-context.ts';
import { securityHeaderPairs, securityHeaders } from './http/security-headers.ts';
import { serveStatic } from './http/static.ts';
import { opsRoutes } from './ops/ops.routes.ts';

const STATIC_PREFIX = '/static/';

export interface AppOptions {
  isDraining?: () => boolean;
}

export function createApp(deps: Deps, opts: AppOptions = {}): Koa {
  const app = new Koa({ proxy: deps.config.trustProxy });
  app.keys = [deps.secrets.deriveKey('cookies').toString('base64url')];
  app.silent = true; // the error handler logs; Koa's default stderr dump would duplicate it
  app.use(requestContext({ log: deps.log, httpDuration: deps.metrics.httpDuration }));
  app.use(errorHandler({ views: deps.views }));
  const headerOptions = { https: deps.config.publicUrl.startsWith('https://'), extraImgSrc: deps.config.mode === 'demo' ? ['http:'] : [] };
  app.use(securityHeaders(headerOptions));
  const ops = opsRoutes({ db: deps.db, kv: deps.kv, metrics: deps.metrics, isDraining: opts.isDraining });
  // A worker node serves only the ops endpoints; its job is the background loops.
  const featureRouters = deps.config.role === 'worker' ? [] : deps.features.flatMap((f) => (f.routes ? [f.routes] : []));
  const routers = [ops, ...featureRouters];
  const mounts = deps.config.role === 'worker' ? [] : deps.mounts;
  // Ahead of static files and mounted apps (two hops fewer for JWKS, discovery and health
  // checks), except for a path one of them owns: those keep their owner.
  const unless = (path: string) => path.startsWith(STATIC_PREFIX) || mounts.some((m) => path === m.prefix || path.startsWith(`${m.prefix}/`));
  app.use(servePrecomputed(routers, { unless }));
  app.use(serveStatic({ prefix: STATIC_PREFIX }));
  for (const m of mounts) app.use(mountApp(m.prefix, m.app));
  app.use(dispatchRouters(routers, { allowedMethods: featureRouters.length > 0 }));
  // The precomputed documents' exact paths are answered before Koa makes a context (issue #9).
  const door = frontDoor(routers, { unless, headers: securityHeaderPairs(headerOptions), httpDuration: deps.metrics.httpDuration });
  const koaCallback = app.callback.bind(app);
  app.callback = () => {
    const handle = koaCallback();
    const listener: typeof handle = (req, res) => (door(req as IncomingMessage, res as ServerResponse) ? Promise.resolve() : handle(req, res));
    return listener;
  };
  return app;
}
