/**
 * CSRF for browser forms (ASVS 3.5.1): a token in every form, bound to a random
 * per-browser id in an HttpOnly cookie (token = HMAC(key, id)), plus an Origin check
 * when the browser sends one. Protocol endpoints authenticate callers otherwise and
 * do not use this.
 */
import type { Context } from 'koa';
import type { CookiePolicy } from './cookies.ts';
import { AppError } from './errors.ts';
import { hmacSha256, randomId, safeEqual } from '../security/secrets.ts';

export interface Csrf {
  token(ctx: Context): string;
  /** Throws AppError('request.csrf') unless the submitted token matches. */
  verify(ctx: Context, submitted: unknown): void;
}

export function createCsrf(opts: { key: Buffer; cookies: CookiePolicy; publicUrl: string }): Csrf {
  const name = opts.cookies.name('wxb_csrf');
  const origin = new URL(opts.publicUrl).origin;
  const browserId = (ctx: Context): string => {
    let id = ctx.cookies.get(name, { signed: true });
    if (!id || !/^[A-Za-z0-9_-]{22,}$/.test(id)) {
      id = randomId(18);
      ctx.cookies.set(name, id, opts.cookies.options({ sameSite: 'lax', maxAgeMs: 12 * 3600_000 }));
    }
    return id;
  };
  return {
    token: (ctx) => hmacSha256(opts.key, `csrf:${browserId(ctx)}`),
    verify(ctx, submitted) {
      const o = ctx.get('origin');
      if (o && o !== origin && o !== 'null') throw new AppError('request.csrf', 'cross-origin form submission refused');
      const id = ctx.cookies.get(name, { signed: true });
      if (!id || typeof submitted !== 'string' || !safeEqual(submitted, hmacSha256(opts.key, `csrf:${id}`)))
        throw new AppError('request.csrf', 'the form expired; go back, reload and try again');
    },
  };
}
