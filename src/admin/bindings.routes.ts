/**
 * Bindings: list and search, a binding's page, unlink with a reason, and a manual link
 * (recorded as admin-proven). Changes go through linking's service, which writes the
 * binding, its webhook event and its audit row in one transaction; the refresh tokens of
 * an unlinked binding stop working at once because the token service re-reads the
 * binding's status at every use (DESIGN.md "Tokens").
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { AppError } from '../http/errors.ts';
import { parseInput } from '../http/validate.ts';
import { findIdentityById, findIdentityByOpenid } from '../linking/identities.queries.ts';
import { stripControl } from './audit.service.ts';
import * as Q from './bindings.queries.ts';
import { actorNames, auth, formSchema, principal, readForm, renderAdmin, see, stripEmpty, visibleMerchants, who } from './guard.routes.ts';
import { recentAuditFor } from './audit.queries.ts';
import { assertMerchant, can, scopeOf } from './policy.ts';
import type { AdminWeb } from './web.ts';

export const PAGE_SIZE = 50;

export const listQuery = z
  .object({
    merchant: z.string().max(40).optional(),
    status: z.enum(['active', 'revoked', '']).optional(),
    proof: z.enum(['oidc', 'verify-api', 'binding-code', 'admin', 'import', '']).optional(),
    q: z.string().max(200).optional(),
    before: z.string().regex(/^\d{13}_[0-9a-f-]{36}$/).optional(),
    done: z.string().optional(),
  })
  .strict();

export type ListQuery = z.infer<typeof listQuery>;

export function filterOf(v: ListQuery, limit: number): Q.BindingFilter {
  const [ms, id] = v.before?.split('_') ?? [];
  return {
    merchantId: v.merchant || undefined,
    status: v.status || undefined,
    proof: v.proof || undefined,
    q: v.q?.trim() || undefined,
    before: ms && id ? { createdAt: new Date(Number(ms)), id } : undefined,
    limit,
  };
}

const unlinkForm = formSchema({ reason: z.string().trim().min(3, 'say why, in a few words').max(300) });
const linkForm = formSchema({
  merchant: z.string().max(40),
  identity: z.string().trim().min(1).max(128),
  account: z.string().trim().min(1).max(128),
  display: z.string().trim().max(64).optional(),
  note: z.string().trim().min(3, 'say how the account was proven').max(300),
});

/** The binding named in the URL, after the object-level check (403 for another merchant's). */
export async function bindingFor(ctx: Context, web: AdminWeb): Promise<Q.AdminBindingRow> {
  const row = await Q.findBindingRow(web.db, ctx.params.id ?? '');
  if (!row) throw new AppError('request.not_found');
  assertMerchant(principal(ctx), row.merchant_id);
  return row;
}

export function bindingsRoutes(r: Router, web: AdminWeb): void {
  r.get('/bindings', auth(web, 'view'), async (ctx) => {
    const v = parseInput(listQuery, ctx.query);
    const rows = await Q.listBindings(web.db, scopeOf(principal(ctx)), filterOf(v, PAGE_SIZE + 1));
    const last = rows.length > PAGE_SIZE ? rows[PAGE_SIZE - 1] : undefined;
    const nextQs = last ? new URLSearchParams({ ...stripEmpty(v), before: `${last.created_at.getTime()}_${last.id}` }).toString() : '';
    renderAdmin(ctx, web, 'bindings', {
      title: 'Bindings',
      rows: rows.slice(0, PAGE_SIZE),
      f: v,
      merchants: visibleMerchants(ctx, web),
      nextQs,
      exportQs: new URLSearchParams(stripEmpty({ ...v, before: undefined, done: undefined })).toString(),
      canWrite: can(principal(ctx), 'bindings.write'),
    });
  });

  r.get('/bindings/new', auth(web, 'bindings.write'), (ctx) => showLink(ctx, web));

  r.post('/bindings/new', auth(web, 'bindings.write'), async (ctx) => {
    const f = await readForm(ctx, web, linkForm);
    assertMerchant(principal(ctx), f.merchant);
    const merchant = web.config.merchants.find((m) => m.id === f.merchant);
    const account = web.config.officialAccounts.find((a) => a.id === merchant?.officialAccount);
    if (!merchant || !account) return showLink(ctx, web, 'Unknown merchant.', f, 400);
    const identity = (await findIdentityById(web.db, f.identity)) ?? (await findIdentityByOpenid(web.db, account.appId, f.identity));
    if (!identity || identity.appId !== account.appId)
      return showLink(ctx, web, `No WeChat user with that openid or id on the official account '${account.id}'.`, f, 400);
    if (!web.ports.linking) return showLink(ctx, web, 'Linking is not available on this deployment yet.', f, 503);
    const w = who(ctx);
    const res = await web.ports.linking.link({
      merchantId: merchant.id,
      identityId: identity.id,
      account: { id: f.account, display: f.display || null },
      proof: 'admin',
      actor: w.actor,
      source: `${w.source} note: ${stripControl(f.note)}`.slice(0, 400),
    });
    if (!res.ok)
      return showLink(ctx, web, res.reason === 'conflict' ? 'This account is linked to another WeChat user (exclusive merchant).' : 'This user has reached the merchant’s account limit.', f, 409);
    see(ctx, `/admin/bindings/${res.binding.id}`, res.created ? 'Linked (admin-proven).' : 'Already linked.');
  });

  r.get('/bindings/:id', auth(web, 'view'), async (ctx) => {
    const b = await bindingFor(ctx, web);
    const history = await recentAuditFor(web.db, scopeOf(principal(ctx)), { bindingId: b.id }, 50);
    renderAdmin(ctx, web, 'binding', { title: `Binding ${b.account_display ?? b.account_id}`, b, history, actors: await actorNames(web), canWrite: can(principal(ctx), 'bindings.write') && !!web.ports.linking });
  });

  r.post('/bindings/:id/unlink', auth(web, 'bindings.write'), async (ctx) => {
    const b = await bindingFor(ctx, web);
    const f = await readForm(ctx, web, unlinkForm);
    if (!web.ports.linking) throw new AppError('dependency.unavailable');
    const w = who(ctx);
    await web.ports.linking.revokeBinding({ bindingId: b.id, merchantId: b.merchant_id, actor: w.actor, reason: f.reason, source: w.source });
    see(ctx, `/admin/bindings/${b.id}`, 'Unlinked. The merchant gets a binding.revoked webhook; the binding’s tokens no longer work.');
  });
}

function showLink(ctx: Context, web: AdminWeb, error = '', f: Partial<z.infer<typeof linkForm>> = {}, status = 200): void {
  const q = ctx.query;
  const prefill = { merchant: f.merchant ?? (typeof q.merchant === 'string' ? q.merchant : ''), identity: f.identity ?? (typeof q.identity === 'string' ? q.identity : ''), account: f.account ?? '', display: f.display ?? '', note: f.note ?? '' };
  renderAdmin(ctx, web, 'binding-new', { title: 'Link an account', error, f: prefill, merchants: visibleMerchants(ctx, web) }, status);
}
