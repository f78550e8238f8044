/**
 * Precomputed documents (JWKS, discovery, /healthz): answered before Koa and the routers.
 *
 * A route handler made with `precomputed(produce)` declares that its answer is a document
 * computed ahead of time (body, type, ETag, caching), that reads nothing of the request but
 * its path and validators, and needs none of its router's middleware. `precomputedRoutes()`
 * finds such routes on exact, parameterless GET paths. Two ways serve them:
 * - `frontDoor()`, in front of Koa itself: a request for exactly such a path (no query string)
 *   gets one `writeHead` with the kernel's headers (security headers, request id) and the
 *   document's, prebuilt per document, and the same metrics observation; no Koa context, no
 *   middleware (issue #9: JWKS at ≥ 80% of bare Koa). Public documents are not access-logged,
 *   as health checks are not.
 * - `servePrecomputed()`, the same answer inside Koa ahead of the routers, for the spellings
 *   the front door leaves (a query string).
 *
 * Both fall back to the normal route whenever they cannot answer exactly as the router would:
 * another path spelling (case, trailing slash), an earlier route that also matches the path,
 * a path that something in front of the routers owns (a static prefix, a mounted app), or a
 * producer that throws (the JWKS before the keys are loaded: the router first awaits the
 * feature's readiness, then serves the same document).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { Histogram } from 'prom-client';
import { INBOUND_REQUEST_ID } from './request-context.ts';

/** A document served as is: computed when it changes, never per request. */
export interface PrecomputedDocument {
  readonly body: string;
  /** Content-Type. */
  readonly type: string;
  /** Strong validator: a matching If-None-Match gets 304. */
  readonly etag?: string;
  /** Replaces the kernel's `no-store`. */
  readonly cacheControl?: string;
  /** Readable from any origin (CORS `*`, CORP cross-origin): public keys and metadata. */
  readonly crossOrigin?: boolean;
}

type Produce = () => PrecomputedDocument;

const FAST = Symbol('wxbridge.precomputed');
type Tagged = Middleware & { [FAST]?: Produce };

/** A GET handler answering with the document `produce` returns (see the file comment). */
export function precomputed(produce: Produce): Middleware {
  const handler: Tagged = (ctx) => {
    serveDocument(ctx, produce());
  };
  handler[FAST] = produce;
  return handler;
}

/** If-None-Match uses weak comparison (RFC 9110 §13.1.2): `W/` is ignored. */
function matches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header === etag || header === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

/**
 * Serves a document through Koa: its headers over the kernel's, 304 on a matching ETag.
 * Compared here rather than with ctx.fresh: a conditional fetch() also sends
 * `Cache-Control: no-cache`, which makes `fresh` say no, yet the origin may still answer 304
 * to a matching validator (RFC 9110 §13.1.2).
 */
export function serveDocument(ctx: Context, doc: PrecomputedDocument): void {
  const res = ctx.res;
  for (const [name, value] of documentHeaders(doc)) res.setHeader(name, value);
  if (doc.etag && matches(ctx.get('if-none-match'), doc.etag)) {
    ctx.status = 304;
    return;
  }
  res.setHeader('Content-Type', doc.type);
  ctx.body = doc.body;
}

/** The headers a document sets over the kernel's, on a 200 and a 304 alike (Content-Type is the 200's alone). */
function documentHeaders(doc: PrecomputedDocument): [string, string][] {
  const out: [string, string][] = [];
  if (doc.cacheControl) out.push(['Cache-Control', doc.cacheControl]);
  if (doc.crossOrigin) out.push(['Access-Control-Allow-Origin', '*'], ['Cross-Origin-Resource-Policy', 'cross-origin']);
  if (doc.etag) out.push(['ETag', doc.etag]);
  return out;
}

interface Layer {
  path: string | RegExp;
  methods: string[];
  paramNames: unknown[];
  stack: Tagged[];
  match(path: string): boolean;
}

const layersOf = (r: Router): Layer[] => r.stack as unknown as Layer[];

/** Exact path → producer, for every tagged route no earlier GET route could also answer. */
export function precomputedRoutes(routers: readonly Router[]): Map<string, Produce> {
  const all = routers.flatMap(layersOf).filter((l) => l.methods.includes('GET'));
  const out = new Map<string, Produce>();
  all.forEach((layer, i) => {
    const produce = layer.stack.at(-1)?.[FAST];
    if (!produce || typeof layer.path !== 'string' || layer.paramNames.length > 0 || layer.stack.length !== 1) return;
    const path = layer.path;
    if (out.has(path) || all.slice(0, i).some((earlier) => earlier.match(path))) return;
    out.set(path, produce);
  });
  return out;
}

export interface PrecomputedOptions {
  /** Paths that something in front of the routers (a static prefix, a mounted app) owns. */
  unless?: (path: string) => boolean;
}

/** Indexed on first use, like the dispatch step, so routes added after wiring count. */
function lazyIndex(routers: readonly Router[], opts: PrecomputedOptions): () => Map<string, Produce> {
  let routes: Map<string, Produce> | undefined;
  return () => {
    if (!routes) {
      routes = precomputedRoutes(routers);
      if (opts.unless) for (const path of [...routes.keys()]) if (opts.unless(path)) routes.delete(path);
    }
    return routes;
  };
}

/** The precomputed paths inside Koa, ahead of the routers; anything else, or a producer not ready, goes on. */
export function servePrecomputed(routers: readonly Router[], opts: PrecomputedOptions = {}): Middleware {
  const routes = lazyIndex(routers, opts);
  return (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    const path = ctx.path;
    const produce = routes().get(path);
    if (!produce) return next();
    let doc: PrecomputedDocument;
    try {
      doc = produce();
    } catch {
      return next();
    }
    serveDocument(ctx, doc);
    // The same route label the router would give, for the HTTP duration histogram.
    (ctx as unknown as { _matchedRoute: string })._matchedRoute = path;
    return Promise.resolve();
  };
}

export interface FrontDoorOptions extends PrecomputedOptions {
  /** The kernel's headers on every response (security headers, `Cache-Control: no-store`). */
  headers: readonly (readonly [string, string])[];
  httpDuration?: Histogram<'method' | 'route' | 'status'>;
}

/** What a document's 200 and 304 answers carry besides the request id: built once per document. */
interface Prebuilt {
  ok: string[];
  notModified: string[];
}

/**
 * A request listener's first step: answers a precomputed path and returns true, or returns
 * false and leaves the request untouched for Koa.
 */
export function frontDoor(routers: readonly Router[], opts: FrontDoorOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const routes = lazyIndex(routers, opts);
  const built = new WeakMap<PrecomputedDocument, Prebuilt>();
  const observers = new Map<string, { observe(seconds: number): void }>();

  /** The kernel's headers with the document's over them, as `serveDocument` leaves them through Koa. */
  function prebuild(doc: PrecomputedDocument): Prebuilt {
    const own = documentHeaders(doc);
    const overridden = new Set(own.map(([name]) => name.toLowerCase()));
    const common = [...opts.headers.filter(([name]) => !overridden.has(name.toLowerCase())), ...own].flat();
    return {
      ok: [...common, 'Content-Type', doc.type, 'Content-Length', String(Buffer.byteLength(doc.body))],
      notModified: common,
    };
  }

  function observe(method: string, path: string, status: number, start: number): void {
    if (!opts.httpDuration) return;
    const key = `${method} ${status} ${path}`;
    let o = observers.get(key);
    if (!o) {
      o = opts.httpDuration.labels({ method, route: path, status: String(status) });
      observers.set(key, o);
    }
    o.observe((performance.now() - start) / 1000);
  }

  return (req, res) => {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return false;
    const url = req.url;
    if (!url || url.includes('?')) return false;
    const produce = routes().get(url);
    if (!produce) return false;
    const start = performance.now();
    let doc: PrecomputedDocument;
    try {
      doc = produce();
    } catch {
      return false;
    }
    let pre = built.get(doc);
    if (!pre) {
      pre = prebuild(doc);
      built.set(doc, pre);
    }
    const inbound = req.headers['x-request-id'];
    const requestId = typeof inbound === 'string' && INBOUND_REQUEST_ID.test(inbound) ? inbound : randomUUID();
    const notModified = doc.etag !== undefined && matches(req.headers['if-none-match'], doc.etag);
    const status = notModified ? 304 : 200;
    res.writeHead(status, ['X-Request-Id', requestId, ...(notModified ? pre.notModified : pre.ok)]);
    if (notModified || method === 'HEAD') res.end();
    else res.end(doc.body);
    observe(method, url, status, start);
    return true;
  };
}
