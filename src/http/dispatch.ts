/**
 * One dispatch step in front of the feature routers (issue #9). Each `@koa/router` matches a
 * request against every one of its layers, so with a dozen feature routers in sequence every
 * request paid for all of them. Here each router is indexed by the first path segments its
 * routes can match; a request runs only the routers that can answer its first segment, in
 * their original order. A router whose routes do not start with a literal segment (a leading
 * parameter, a RegExp) runs for every path.
 *
 * Skipping a router is exact: a router none of whose routes matches the path only records
 * its path-matching middleware layers (no methods) in `ctx.matched` and calls `next()`.
 * `allowedMethods()` reads the methods of `ctx.matched` across all routers, so one instance
 * at the end answers 405/501/OPTIONS exactly as one per router did.
 */
import compose from 'koa-compose';
import type Router from '@koa/router';
import type { Middleware } from 'koa';

/** A router whose routes can match any first segment. */
const ANY = 'any' as const;
type Segments = Set<string> | typeof ANY;
// Characters with a meaning in path-to-regexp route paths: such a segment is not a literal.
const PATTERN = /[:*?+(){}[\]!\\]/;

interface Layer {
  path: string | RegExp;
  methods: string[];
}

/** Lower-cased, as routes match case-insensitively by default (a superset is always safe). */
function firstSegment(path: string): string {
  const end = path.indexOf('/', 1);
  return (end === -1 ? path.slice(1) : path.slice(1, end)).toLowerCase();
}

function segmentsOf(router: Router): Segments {
  const out = new Set<string>();
  for (const layer of router.stack as unknown as Layer[]) {
    if (layer.methods.length === 0) continue; // middleware layers never make a router answer
    if (typeof layer.path !== 'string' || !layer.path.startsWith('/')) return ANY;
    const seg = firstSegment(layer.path);
    if (PATTERN.test(seg)) return ANY;
    out.add(seg);
  }
  return out;
}

export interface DispatchOptions {
  /** Answer 405 / 501 / OPTIONS from the routes' methods (what `router.allowedMethods()` does). */
  allowedMethods: boolean;
}

export function dispatchRouters(routers: readonly Router[], opts: DispatchOptions): Middleware {
  // Built on first use, so routes a feature adds after wiring are indexed too.
  let table: { bySegment: Map<string, Middleware>; other: Middleware } | undefined;

  function build(): NonNullable<typeof table> {
    const entries = routers.map((r) => ({ mw: r.routes() as Middleware, segments: segmentsOf(r) }));
    const tail: Middleware[] = [];
    const last = routers.at(-1);
    if (opts.allowedMethods && last) {
      // Every router's routes() leaves `ctx.matched` set, which is what lets allowedMethods
      // answer 501 for an unknown method on any path; keep that when no router ran.
      tail.push((ctx, next) => {
        (ctx as unknown as { matched?: unknown[] }).matched ??= [];
        return next();
      });
      tail.push(last.allowedMethods() as Middleware);
    }
    const chain = (pick: (s: Segments) => boolean): Middleware =>
      compose([...tail, ...entries.filter((e) => pick(e.segments)).map((e) => e.mw)]);
    const literal = new Set(entries.flatMap((e) => (e.segments === ANY ? [] : [...e.segments])));
    const bySegment = new Map([...literal].map((seg) => [seg, chain((s) => s === ANY || s.has(seg))]));
    return { bySegment, other: chain((s) => s === ANY) };
  }

  return (ctx, next) => {
    table ??= build();
    const mw = table.bySegment.get(firstSegment(ctx.path)) ?? table.other;
    return mw(ctx, next);
  };
}
