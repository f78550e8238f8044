/**
 * Notices and webhooks: delivery lists with status and errcode (or HTTP status), and the
 * actions the owning services offer: replay or retry a webhook event (webhooks feature),
 * retry a failed notice delivery (notices feature, when it offers the call).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { AppError } from '../http/errors.ts';
import { parseInput } from '../http/validate.ts';
import type { Queryable } from '../store/db.ts';
import * as Q from './deliveries.queries.ts';
import { auth, formSchema, principal, readForm, renderAdmin, see, visibleMerchants, who } from './guard.routes.ts';
import { assertMerchant, can, scopeOf } from './policy.ts';
import type { AdminWeb } from './web.ts';

const listQuery = z
  .object({
    tab: z.enum(['notices', 'webhooks']).optional(),
    merchant: z.string().max(40).optional(),
    status: z.enum(['', 'queued', 'sending', 'sent', 'delivered', 'failed', 'unknown', 'processing', 'abandoned']).optional(),
    done: z.string().optional(),
  })
  .strict();

export function deliveriesRoutes(r: Router, web: AdminWeb): void {
  /** The merchant of the delivery in the URL, after the object-level check, the CSRF check and the port check. */
  async function deliveryFor(ctx: Context, merchantOf: (q: Queryable, id: string) => Promise<string | null>, port: unknown): Promise<string> {
    const merchantId = await merchantOf(web.db, ctx.params.id ?? '');
    if (!merchantId) throw new AppError('request.not_found');
    assertMerchant(principal(ctx), merchantId);
    await readForm(ctx, web, formSchema({}));
    if (!port) throw new AppError('dependency.unavailable');
    return merchantId;
  }

  r.get('/deliveries', auth(web, 'view'), async (ctx) => {
    const v = parseInput(listQuery, ctx.query);
    const scope = scopeOf(principal(ctx));
    const tab = v.tab ?? 'notices';
    const f = { merchantId: v.merchant || undefined, status: v.status || undefined, limit: 100 };
    renderAdmin(ctx, web, 'deliveries', {
      title: 'Notices & webhooks',
      tab,
      f: v,
      merchants: visibleMerchants(ctx, web),
      notices: tab === 'notices' ? await Q.listNoticeDeliveries(web.db, scope, f) : [],
      webhooks: tab === 'webhooks' ? await Q.listWebhookEvents(web.db, scope, f) : [],
      canRetry: can(principal(ctx), 'deliveries.retry'),
      noticeRetry: !!web.ports.notices,
      webhookReplay: !!web.ports.webhooks,
    });
  });

  r.post('/webhooks/:id/replay', auth(web, 'deliveries.retry'), async (ctx) => {
    const merchantId = await deliveryFor(ctx, Q.webhookEventMerchant, web.ports.webhooks);
    const res = await web.ports.webhooks!.replay({ eventId: ctx.params.id ?? '', merchantId });
    if (res === 'replayed') await web.audit.record(who(ctx), { action: 'deliveries.retried', merchantId, detail: { webhookEvent: ctx.params.id ?? '' } });
    see(ctx, '/admin/deliveries?tab=webhooks', res === 'replayed' ? 'Queued again; it is retried for another day.' : 'It is being delivered right now; try again when it has finished.');
  });

  r.post('/notices/deliveries/:id/retry', auth(web, 'deliveries.retry'), async (ctx) => {
    const merchantId = await deliveryFor(ctx, Q.noticeDeliveryMerchant, web.ports.notices);
    const res = await web.ports.notices!.retryDelivery({ deliveryId: ctx.params.id ?? '', merchantId, actor: who(ctx).actor });
    if (res === 'retried') await web.audit.record(who(ctx), { action: 'deliveries.retried', merchantId, detail: { noticeDelivery: ctx.params.id ?? '' } });
    see(ctx, '/admin/deliveries?tab=notices', res === 'retried' ? 'Queued for another attempt.' : 'Only a failed delivery can be retried.');
  });
}
