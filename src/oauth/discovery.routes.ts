/**
 * GET /.well-known/openid-configuration, /.well-known/oauth-authorization-server and
 * /.well-known/jwks.json (DESIGN.md routes; SECURITY.md A4, T4). Bodies and ETags are
 * precomputed when the keys change, so a request costs a few header writes. The JWKS
 * max-age is part of the rotation arithmetic (policy.ts publishLeadMs): change it there.
 * Public, cacheable and readable cross-origin (browsers may verify ID tokens).
 */
import Router from '@koa/router';
import { precomputed, type PrecomputedDocument } from '../http/precomputed.ts';
import { cachedJson, metadata, type CachedDocument } from './discovery.ts';
import type { KeysService } from './keys.service.ts';

export function createDiscoveryRoutes(deps: { issuer: string; keys: KeysService; maxAgeSeconds: number }): Router {
  const router = new Router();
  const cacheControl = `public, max-age=${deps.maxAgeSeconds}`;
  const asDocument = publicJson(cacheControl);
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

  // Precomputed: answered ahead of Koa (src/http/precomputed.ts). Before the keys are loaded
  // `jwks()` throws, and the request takes the router, which awaits them.
  router.get('/.well-known/jwks.json', precomputed(() => asDocument(deps.keys.jwks())));
  router.get('/.well-known/openid-configuration', precomputed(() => asDocument(document())));
  router.get('/.well-known/oauth-authorization-server', precomputed(() => asDocument(document())));
  return router;
}

/**
 * A cached JSON body as a public document: cacheable, readable cross-origin, 304 on a matching
 * ETag. The same document object for the same body, so what is built from it is built once.
 */
export function publicJson(cacheControl: string): (doc: CachedDocument) => PrecomputedDocument {
  const made = new WeakMap<CachedDocument, PrecomputedDocument>();
  return (doc) => {
    let d = made.get(doc);
    if (!d) {
      d = { body: doc.body, etag: doc.etag, type: 'application/json', cacheControl, crossOrigin: true };
      made.set(doc, d);
    }
    return d;
  };
}
