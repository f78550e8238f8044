/**
 * Request id, a child logger per request, the locale, and one access-log line. The
 * query string is never logged: it carries WeChat codes and state.
 *
 * The child logger and the locale are made on first use, not per request: a pino child
 * runs its bindings through redaction (measured at ~9% of a JWKS request's CPU), and most
 * hot requests (JWKS, pushes, health checks) never log at the configured level or render
 * a page. The access line is written only when its level is enabled.
 */
import { randomUUID } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import type { Logger } from 'pino';
import type { Histogram } from 'prom-client';
import type { RequestState } from './context.ts';
import { pickLocale, type Locale } from './i18n.ts';

/** A request id a caller (a balancer, a proxy) may hand in: echoed when it looks like this, else a new one is made. */
export const INBOUND_REQUEST_ID = /^[A-Za-z0-9._-]{8,64}$/;
const UNLOGGED = new Set(['/healthz', '/readyz', '/metrics']);

/** `ctx.state` with `log` and `locale` computed on first read; both stay assignable. */
class LazyRequestState {
  [key: string]: unknown;
  #log: Logger | undefined;
  #locale: Locale | undefined;
  readonly #base: Logger;
  readonly #ctx: Context;

  constructor(
    readonly requestId: string,
    base: Logger,
    ctx: Context,
  ) {
    this.#base = base;
    this.#ctx = ctx;
  }

  get log(): Logger {
    return (this.#log ??= this.#base.child({ reqId: this.requestId }));
  }

  set log(log: Logger) {
    this.#log = log;
  }

  /** The request's own logger if it has one, else the base one: for level checks without making a child. */
  get logIfMade(): Logger {
    return this.#log ?? this.#base;
  }

  get locale(): Locale {
    if (this.#locale === undefined) {
      const lang = this.#ctx.query.lang;
      this.#locale = pickLocale(this.#ctx.get('accept-language') || undefined, typeof lang === 'string' ? lang : undefined);
    }
    return this.#locale;
  }

  set locale(locale: Locale) {
    this.#locale = locale;
  }
}

export function requestContext(deps: { log: Logger; httpDuration?: Histogram<'method' | 'route' | 'status'> }): Middleware {
  return async (ctx, next) => {
    const start = performance.now();
    const inbound = ctx.get('x-request-id');
    const requestId = inbound && INBOUND_REQUEST_ID.test(inbound) ? inbound : randomUUID();
    const state = new LazyRequestState(requestId, deps.log, ctx);
    // Koa creates `state` as a plain object; features only add keys to it, so carry any over.
    Object.assign(state, ctx.state);
    ctx.state = state as unknown as RequestState;
    ctx.res.setHeader('X-Request-Id', requestId);
    try {
      await next();
    } finally {
      const ms = performance.now() - start;
      const route = (ctx as unknown as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      deps.httpDuration?.observe({ method: ctx.method, route: String(route), status: String(ctx.status) }, ms / 1000);
      const level = ctx.status >= 500 ? 'error' : 'info';
      if (!UNLOGGED.has(ctx.path) && state.logIfMade.isLevelEnabled(level))
        state.log[level]({ method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(ms * 10) / 10 }, 'request');
    }
  };
}
