/**
 * Security headers on every response (ASVS 3.4; RFC 9700 §4.16 clickjacking):
 * a strict CSP with no inline script or style, frame-ancestors 'none' plus
 * X-Frame-Options, no referrer (auth pages must not leak codes, RFC 9700 §4.2.4),
 * nosniff, HSTS on https. Dynamic responses default to no-store; cacheable routes
 * (JWKS, static files) set their own Cache-Control.
 */
import type { Middleware } from 'koa';

export interface SecurityHeaderOptions {
  https: boolean;
  extraImgSrc?: string[];
}

/** The headers every response carries, in order (the front door of src/http/precomputed.ts writes them too). */
export function securityHeaderPairs(opts: SecurityHeaderOptions): readonly (readonly [string, string])[] {
  const csp = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src 'self' data: https:${opts.extraImgSrc?.length ? ' ' + opts.extraImgSrc.join(' ') : ''}`,
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  // Built once: a request only copies these pairs onto the response (no per-request strings).
  const headers: readonly (readonly [string, string])[] = Object.freeze([
    ['Content-Security-Policy', csp],
    ['X-Frame-Options', 'DENY'],
    ['X-Content-Type-Options', 'nosniff'],
    ['Referrer-Policy', 'no-referrer'],
    ['Cross-Origin-Opener-Policy', 'same-origin'],
    ['Cross-Origin-Resource-Policy', 'same-origin'],
    ['Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()'],
    ...(opts.https ? [['Strict-Transport-Security', 'max-age=31536000; includeSubDomains'] as const] : []),
    ['Cache-Control', 'no-store'],
  ] as const);
  return headers;
}

export function securityHeaders(opts: SecurityHeaderOptions): Middleware {
  const headers = securityHeaderPairs(opts);
  return (ctx, next) => {
    const res = ctx.res;
    for (const [name, value] of headers) res.setHeader(name, value);
    return next();
  };
}
