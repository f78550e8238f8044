/**
 * Security headers on every response (ASVS 3.4; RFC 9700 §4.16 clickjacking):
 * a strict CSP with no inline script or style, frame-ancestors 'none' plus
 * X-Frame-Options, no referrer (auth pages must not leak codes, RFC 9700 §4.2.4),
 * nosniff, HSTS on https. Dynamic responses default to no-store; cacheable routes
 * (JWKS, static files) set their own Cache-Control.
 */
import type { Middleware } from 'koa';

export function securityHeaders(opts: { https: boolean; extraImgSrc?: string[] }): Middleware {
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
  return async (ctx, next) => {
    ctx.set('Content-Security-Policy', csp);
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
    ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
    ctx.set('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()');
    if (opts.https) ctx.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    ctx.set('Cache-Control', 'no-store');
    await next();
  };
}
