/**
 * Notices and webhooks: delivery lists with status and errcode (or HTTP status), filtered
 * by status, errcode, merchant and date, and the actions the owning services offer: retry
 * a failed notice delivery (notices' `retryDelivery`), replay a finished webhook event
 * (webhooks' `replay`). An `unknown` notice delivery may already have reached the user, so
 * its retry is a separate, explicit confirmation.
 *
 * Every action: the role (`deliveries.retry`), the object's merchant (403 for a scoped
 * account on another merchant's delivery), the CSRF token, then the service, and an audit
 * row with before and after.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { AppError } from '../http/errors.ts';
import { parseInput } from '../http/validate.ts';
import * as Q from './deliveries.queries.ts';
import { auth, formSchema, principal, readForm, renderAdmin, see, stripEmpty, visibleMerchants, who } from './guard.routes.ts';
import { assertMerchant, can, scopeOf } from './policy.ts';
import type { AdminWeb } from './web.ts';

const PAGE = 50;
const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date as YYYY-MM-DD').refine((v) => !Number.isNaN(Date.parse(`${v}T00:00:00Z`)), 'not a date');

const listQuery = z
  .object({
    tab: z.enum(['notices', 'webhooks']).optional(),
    merchant: z.string().max(40).optional(),
    status: z.enum(['', 'queued', 'sending', 'sent', 'delivered', 'failed', 'unknown', 'processing', 'abandoned']).optional(),
    errcode: z.union([z.literal(''), z.string().regex(/^-?\d{1,7}$/, 'a number')]).optional(),
    from: z.union([z.literal(''), day]).optional(),
    to: z.union([z.literal(''), day]).optional(),
    page: z.string().regex(/^\d{1,4}$/).optional(),
    done: z.string().optional(),
  })
  .strict();

/** `to` is inclusive in the form (a day), exclusive in SQL (the next midnight, UTC). */
const dayStart = (v: string | undefined, plusDays = 0) => (v ? new Date(Date.parse(`${v}T00:00:00Z`) + plusDays * 86_400_000) : undefined);

export function deliveriesRoutes(r: Router, web: AdminWeb): void {
  const notices = () => {
    if (!web.ports.notices) throw new AppError('dependency.unavailable');
    return web.ports.notices;
  };

  r.get('/deliveries', auth(web, 'view'), async (ctx) => {
    const v = parseInput(listQuery, ctx.query);
    const scope = scopeOf(principal(ctx));
    const tab = v.tab ?? 'notices';
    const page = Number(v.page ?? 0);
    const f = {
      merchantId: v.merchant || undefined,
      status: v.status || undefined,
      errcode: v.errcode ? Number(v.errcode) : undefined,
      from: dayStart(v.from),
      to: dayStart(v.to, 1),
      limit: PAGE + 1,
      offset: page * PAGE,
    };
    const notices = tab === 'notices' ? await Q.listNoticeDeliveries(web.db, scope, f) : [];
    const webhooks = tab === 'webhooks' ? await Q.listWebhookEvents(web.db, scope, f) : [];
    const keep = stripEmpty({ tab, merchant: v.merchant, status: v.status, errcode: v.errcode, from: v.from, to: v.to });
    const link = (p: number) => `/admin/deliveries?${new URLSearchParams({ ...keep, ...(p ? { page: String(p) } : {}) }).toString()}`;
    renderAdmin(ctx, web, 'deliveries', {
      title: 'Notices & webhooks',
      tab,
      f: v,
      merchants: visibleMerchants(ctx, web),
      notices: notices.slice(0, PAGE),
      webhooks: webhooks.slice(0, PAGE),
      newer: page > 0 ? link(page - 1) : null,
      older: notices.length > PAGE || webhooks.length > PAGE ? link(page + 1) : null,
      canRetry: can(principal(ctx), 'deliveries.retry'),
      noticeRetry: !!web.ports.notices,
      webhookReplay: !!web.ports.webhooks,
    });
  });

  /** The confirmation an `unknown` delivery needs (a failed one may use it too). */
  r.get('/notices/deliveries/:id/retry', auth(web, 'deliveries.retry'), async (ctx) => {
    const d = await deliveryInScope(ctx, web);
    renderAdmin(ctx, web, 'delivery-retry', { title: 'Retry a notice delivery', d, retryable: d.status === 'failed' || d.status === 'unknown' });
  });

  r.post('/notices/deliveries/:id/retry', auth(web, 'deliveries.retry'), async (ctx) => {
    const id = ctx.params.id ?? '';
    const merchantId = await Q.noticeDeliveryMerchant(web.db, id);
    if (!merchantId) throw new AppError('request.not_found');
    assertMerchant(principal(ctx), merchantId);
    const form = await readForm(ctx, web, formSchema({ confirm: z.literal('duplicate-risk').optional() }));
    const res = await notices().retryDelivery({
      deliveryId: id,
      merchantId,
      acceptDuplicateRisk: form.confirm === 'duplicate-risk',
      record: (tx, before) =>
        web.audit.record(
          who(ctx),
          {
            action: 'deliveries.retried',
            merchantId,
            identityId: before.identityId,
            detail: { noticeDelivery: id, ...(before.status === 'unknown' ? { duplicateRiskAccepted: true } : {}) },
            before: { status: before.status, attempts: before.attempts, errcode: before.errcode, error: before.error },
            after: { status: 'queued', attempts: 0 },
          },
          tx,
        ),
    });
    switch (res.outcome) {
      case 'retried':
        return see(ctx, '/admin/deliveries?tab=notices', 'Queued for another attempt.');
      case 'needs_confirmation':
        return see(ctx, `/admin/notices/deliveries/${id}/retry`);
      case 'not_retryable':
        return see(ctx, '/admin/deliveries?tab=notices', `Not retried: the delivery is ${res.status}; only a failed or unknown delivery can be retried.`);
      default:
        throw new AppError('request.not_found');
    }
  });

  r.post('/webhooks/:id/replay', auth(web, 'deliveries.retry'), async (ctx) => {
    const id = ctx.params.id ?? '';
    const before = await Q.webhookEventState(web.db, id);
    if (!before) throw new AppError('request.not_found');
    assertMerchant(principal(ctx), before.merchant_id);
    await readForm(ctx, web, formSchema({}));
    if (!web.ports.webhooks) throw new AppError('dependency.unavailable');
    const res = await web.ports.webhooks.replay({ eventId: id, merchantId: before.merchant_id });
    if (res === 'not_found') throw new AppError('request.not_found');
    if (res === 'replayed')
      await web.audit.record(who(ctx), {
        action: 'deliveries.retried',
        merchantId: before.merchant_id,
        detail: { webhookEvent: id },
        before: { status: before.status, attempts: before.attempts, replays: before.replays },
        after: { status: 'queued', replays: before.replays + 1 },
      });
    see(ctx, '/admin/deliveries?tab=webhooks', res === 'replayed' ? 'Queued again; it is retried for another day.' : 'It is being delivered right now; try again when it has finished.');
  });
}

/** The delivery of the URL for the confirmation page: 404 when absent, 403 when another merchant's. */
async function deliveryInScope(ctx: Context, web: AdminWeb): Promise<Q.NoticeDeliveryRow> {
  const id = ctx.params.id ?? '';
  const merchantId = await Q.noticeDeliveryMerchant(web.db, id);
  if (!merchantId) throw new AppError('request.not_found');
  assertMerchant(principal(ctx), merchantId);
  const d = await Q.findNoticeDelivery(web.db, scopeOf(principal(ctx)), id);
  if (!d) throw new AppError('request.not_found');
  return d;
}
