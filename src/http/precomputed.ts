/**
 * Precomputed GET routes (JWKS, discovery, /healthz): served ahead of the routers.
 *
 * A route handler wrapped in `precomputed()` declares that it is synchronous, reads nothing
 * but the request, and needs none of its router's middleware. `precomputedRoutes()` finds
 * such handlers on exact, parameterless GET paths and answers those paths before any router
 * runs, so a JWKS fetch costs the kernel (request id, security headers, metrics) plus a few
 * header writes instead of walking every feature's router (issue #9).
 *
 * Falls back to the normal route whenever it cannot answer exactly as the router would:
 * another path spelling (case, trailing slash), an earlier route that also matches the path,
 * or a handler that throws (the JWKS before the keys are loaded: the router first awaits
 * the feature's readiness, then runs the same handler).
 */
import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';

const FAST = Symbol('wxbridge.precomputed');

type Serve = (ctx: Context) => void;
type Tagged = Middleware & { [FAST]?: Serve };

/** Marks a synchronous, self-contained GET handler as servable before the routers. */
export function precomputed(serve: Serve): Middleware {
  const handler: Tagged = (ctx) => {
    serve(ctx);
  };
  handler[FAST] = serve;
  return handler;
}

interface Layer {
  path: string | RegExp;
  methods: string[];
  paramNames: unknown[];
  stack: Tagged[];
  match(path: string): boolean;
}

const layersOf = (r: Router): Layer[] => r.stack as unknown as Layer[];

/** Exact path → handler, for every tagged route no earlier GET route could also answer. */
export function precomputedRoutes(routers: readonly Router[]): Map<string, Serve> {
  const all = routers.flatMap(layersOf).filter((l) => l.methods.includes('GET'));
  const out = new Map<string, Serve>();
  all.forEach((layer, i) => {
    const serve = layer.stack.at(-1)?.[FAST];
    if (!serve || typeof layer.path !== 'string' || layer.paramNames.length > 0 || layer.stack.length !== 1) return;
    const path = layer.path;
    if (out.has(path) || all.slice(0, i).some((earlier) => earlier.match(path))) return;
    out.set(path, serve);
  });
  return out;
}

/** Drops the paths that something in front of the routers (a static prefix, a mounted app) owns. */
function index(routes: Map<string, Serve>, unless: ((path: string) => boolean) | undefined): Map<string, Serve> {
  if (unless) for (const path of [...routes.keys()]) if (unless(path)) routes.delete(path);
  return routes;
}

/** Answers the precomputed paths; anything else, or a handler that is not ready, goes on. */
export function servePrecomputed(routers: readonly Router[], opts: { unless?: (path: string) => boolean } = {}): Middleware {
  // Indexed on first use, like the dispatch step, so routes added after wiring count.
  let routes: Map<string, Serve> | undefined;
  return (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    routes ??= index(precomputedRoutes(routers), opts.unless);
    const path = ctx.path;
    const serve = routes.get(path);
    if (!serve) return next();
    try {
      serve(ctx);
    } catch {
      return next();
    }
    // The same route label the router would give, for the HTTP duration histogram.
    (ctx as unknown as { _matchedRoute: string })._matchedRoute = path;
    return Promise.resolve();
  };
}
