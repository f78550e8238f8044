/**
 * Request id, a child logger per request, the locale, and one access-log line. The
 * query string is never logged: it carries WeChat codes and state.
 */
import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import type { Histogram } from 'prom-client';
import { pickLocale } from './i18n.ts';

const INBOUND_ID = /^[A-Za-z0-9._-]{8,64}$/;

export function requestContext(deps: { log: Logger; httpDuration?: Histogram<'method' | 'route' | 'status'> }): Middleware {
  return async (ctx, next) => {
    const start = process.hrtime.bigint();
    const inbound = ctx.get('x-request-id');
    const requestId = INBOUND_ID.test(inbound) ? inbound : randomUUID();
    ctx.state.requestId = requestId;
    ctx.state.log = deps.log.child({ reqId: requestId });
    const lang = typeof ctx.query.lang === 'string' ? ctx.query.lang : undefined;
    ctx.state.locale = pickLocale(ctx.get('accept-language') || undefined, lang);
    ctx.set('X-Request-Id', requestId);
    try {
      await next();
    } finally {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      const route = (ctx as unknown as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      deps.httpDuration?.observe({ method: ctx.method, route: String(route), status: String(ctx.status) }, ms / 1000);
      const level = ctx.status >= 500 ? 'error' : 'info';
      if (ctx.path !== '/healthz' && ctx.path !== '/readyz' && ctx.path !== '/metrics')
        ctx.state.log[level]({ method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(ms * 10) / 10 }, 'request');
    }
  };
}
