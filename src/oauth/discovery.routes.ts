/**
 * GET /.well-known/openid-configuration, /.well-known/oauth-authorization-server and
 * /.well-known/jwks.json (DESIGN.md routes; SECURITY.md A4, T4). Bodies and ETags are
 * precomputed when the keys change, so a request costs a few header writes. The JWKS
 * max-age is part of the rotation arithmetic (policy.ts publishLeadMs): change it there.
 * Public, cacheable and readable cross-origin (browsers may verify ID tokens).
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { precomputed } from '../http/precomputed.ts';
import { cachedJson, metadata, type CachedDocument } from './discovery.ts';
import type { KeysService } from './keys.service.ts';

export function createDiscoveryRoutes(deps: { issuer: string; keys: KeysService; maxAgeSeconds: number }): Router {
  const router = new Router();
  const cacheControl = `public, max-age=${deps.maxAgeSeconds}`;
  let forAlgs = '';
  let lastAlgs: readonly string[] | undefined;
  let meta: CachedDocument | undefined;

  const document = (): CachedDocument => {
    const algs = deps.keys.algorithms();
    // The same array while the keys are unchanged: skip even the join on the hot path.
    if (meta && algs === lastAlgs) return meta;
    const key = algs.join(',');
    if (!meta || key !== forAlgs) {
      meta = cachedJson(metadata(deps.issuer, algs));
      forAlgs = key;
    }
    lastAlgs = algs;
    return meta;
  };

  const serve = (ctx: Context, doc: CachedDocument) => serveCached(ctx, doc, cacheControl);

  // Precomputed: answered ahead of the routers (src/http/precomputed.ts). Before the keys
  // are loaded `jwks()` throws, and the request takes the router, which awaits them.
  router.get('/.well-known/jwks.json', precomputed((ctx) => serve(ctx, deps.keys.jwks())));
  router.get('/.well-known/openid-configuration', precomputed((ctx) => serve(ctx, document())));
  router.get('/.well-known/oauth-authorization-server', precomputed((ctx) => serve(ctx, document())));
  return router;
}

/** A precomputed public JSON document: cacheable, readable cross-origin, 304 on a matching ETag. */
export function serveCached(ctx: Context, doc: CachedDocument, cacheControl: string): void {
  const res = ctx.res;
  res.setHeader('Cache-Control', cacheControl);
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
  res.setHeader('ETag', doc.etag);
  // Compared here rather than with ctx.fresh: a conditional fetch() also sends
  // `Cache-Control: no-cache`, which makes `fresh` say no, yet the origin may still
  // answer 304 to a matching validator (RFC 9110 §13.1.2).
  if (matches(ctx.get('if-none-match'), doc.etag)) {
    ctx.status = 304;
    return;
  }
  res.setHeader('Content-Type', 'application/json');
  ctx.body = doc.body;
}

/** If-None-Match uses weak comparison (RFC 9110 §13.1.2): `W/` is ignored. */
function matches(header: string, etag: string): boolean {
  if (!header) return false;
  if (header === etag || header === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}
