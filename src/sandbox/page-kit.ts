/**
 * Rendering for the sandbox's own pages: Eta views from `views/sandbox`, security headers
 * (no inline script or style, so `script-src 'self'; style-src 'self'` holds), a
 * double-submit CSRF token for every form, and the two static files from `public/sandbox`.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import { Eta } from 'eta';
import { AppError } from '../http/errors.ts';

const VIEWS_DIR = fileURLToPath(new URL('../../views/sandbox/', import.meta.url));
const PUBLIC_DIR = fileURLToPath(new URL('../../public/sandbox/', import.meta.url));

const STATIC_FILES: Record<string, string> = {
  'sandbox.css': 'text/css; charset=utf-8',
  'double-redirect.js': 'text/javascript; charset=utf-8',
  'phone.js': 'text/javascript; charset=utf-8',
  'qrconnect.js': 'text/javascript; charset=utf-8',
};

/**
 * The authorize form redirects to the merchant's callback on another origin (standalone
 * sandbox) and the double-redirect page fetches it, so form-action/connect-src allow http(s).
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: http: https:",
  "connect-src 'self' http: https:",
  "form-action 'self' http: https:",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const CSRF_COOKIE = 'sbx_csrf';

export interface PageKit {
  /** Absolute path under the sandbox's mount point. */
  url(path: string): string;
  render(ctx: Context, view: string, model: object, status?: number): void;
  csrfToken(ctx: Context): string;
  /** Throws AppError('request.csrf') unless the form carries the cookie's token. */
  checkCsrf(ctx: Context, form: Record<string, string>): void;
  serveStatic(ctx: Context, file: string): Promise<boolean>;
}

export function createPageKit(basePath: string): PageKit {
  const eta = new Eta({ views: VIEWS_DIR, cache: true, autoEscape: true });
  const staticCache = new Map<string, Buffer>();
  const url = (path: string): string => `${basePath}${path}`;
  const cookiePath = basePath === '' ? '/' : basePath;

  return {
    url,
    render(ctx, view, model, status = 200) {
      const html = eta.render(view, { ...model, base: basePath, url });
      ctx.status = status;
      ctx.set('Content-Security-Policy', CSP);
      ctx.set('X-Frame-Options', 'DENY');
      ctx.set('X-Content-Type-Options', 'nosniff');
      ctx.set('Referrer-Policy', 'no-referrer');
      ctx.set('Cache-Control', 'no-store');
      ctx.type = 'text/html; charset=utf-8';
      ctx.body = html;
    },
    csrfToken(ctx) {
      const existing = ctx.cookies.get(CSRF_COOKIE);
      if (existing && /^[0-9a-f]{32}$/.test(existing)) return existing;
      const token = randomBytes(16).toString('hex');
      ctx.cookies.set(CSRF_COOKIE, token, { httpOnly: true, sameSite: 'lax', path: cookiePath, secure: false, overwrite: true });
      return token;
    },
    checkCsrf(ctx, form) {
      const cookie = Buffer.from(ctx.cookies.get(CSRF_COOKIE) ?? '');
      const sent = Buffer.from(form._csrf ?? '');
      if (cookie.length !== 32 || cookie.length !== sent.length || !timingSafeEqual(cookie, sent)) {
        throw new AppError('request.csrf', 'form expired, reload the page');
      }
    },
    async serveStatic(ctx, file) {
      const type = STATIC_FILES[file];
      if (!type) return false;
      let buf = staticCache.get(file);
      if (!buf) {
        buf = await readFile(`${PUBLIC_DIR}${file}`);
        staticCache.set(file, buf);
      }
      ctx.type = type;
      ctx.set('Cache-Control', 'no-cache');
      ctx.set('X-Content-Type-Options', 'nosniff');
      ctx.body = buf;
      return true;
    },
  };
}
