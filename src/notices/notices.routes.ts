/**
 * The merchant API for notices (DESIGN.md "Merchant API"): thin routes over the service.
 * Every route sits behind the merchant's client-credentials token with scope
 * `notices:send`, and every read is scoped to that merchant (another merchant's notice is
 * a 404, not a 403, so ids cannot be probed).
 */
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { readBody } from '../http/body.ts';
import { AppError } from '../http/errors.ts';
import { parseInput } from '../http/validate.ts';
import { createNoticeSchema, idempotencyKeySchema, merchantAuthSchema, noticeQuerySchema } from './notices.schemas.ts';
import type { NoticesService } from './notices.service.ts';

export type RequireScope = (scope: 'notices:send') => Middleware;

const BODY_LIMIT = 32 * 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function merchantOf(ctx: Context) {
  const auth = merchantAuthSchema.safeParse(ctx.state.merchantAuth);
  // The auth middleware ran before us; a missing identity is our bug, never a pass.
  if (!auth.success) throw new AppError('request.unauthenticated');
  return auth.data;
}

export function createNoticeRoutes(deps: { service: NoticesService; requireScope: RequireScope }): Router {
  const router = new Router({ prefix: '/api/v1/notices' });
  const auth = deps.requireScope('notices:send');

  router.post('/', auth, async (ctx) => {
    const merchant = merchantOf(ctx);
    const key = parseInput(idempotencyKeySchema, ctx.get('idempotency-key') || undefined, 'app', 'Idempotency-Key');
    const request = parseInput(createNoticeSchema, await readBody(ctx, BODY_LIMIT), 'app', 'body');
    const r = await deps.service.createNotice({ merchantId: merchant.merchantId, clientId: merchant.clientId, idempotencyKey: key, request });
    ctx.set('Cache-Control', 'no-store');
    if (r.replayed) ctx.set('Idempotent-Replayed', 'true');
    ctx.status = 202;
    ctx.body = { id: r.id, createdAt: r.createdAt, deliveries: r.deliveries };
  });

  router.get('/:id', auth, async (ctx) => {
    const merchant = merchantOf(ctx);
    const id = ctx.params.id ?? '';
    if (!UUID.test(id)) throw new AppError('request.not_found');
    const query = parseInput(noticeQuerySchema, ctx.query, 'app', 'query');
    const notice = await deps.service.getNotice({ merchantId: merchant.merchantId, id, after: query.after, limit: query.limit });
    if (!notice) throw new AppError('request.not_found');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = notice;
  });

  return router;
}
