/**
 * OAuth clients made in the UI, per merchant: create (the secret is shown once, in that
 * response only), edit redirect URIs, grants, scopes and lifetime, disable, replace the
 * secret. Admin role, the merchant in scope, and a fresh password + TOTP check.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { AppError } from '../http/errors.ts';
import { clientScopes, grantTypes, type ClientInput } from './clients.service.ts';
import { findUiClient, type UiClientRow } from './clients.queries.ts';
import { auth, formSchema, fresh, principal, readForm, renderAdmin, see, who } from './guard.routes.ts';
import { assertMerchant } from './policy.ts';
import type { AdminWeb } from './web.ts';

const many = z.union([z.string(), z.array(z.string())]).optional().transform((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]));
const fields = {
  grantTypes: many,
  scopes: many,
  redirectUris: z.string().max(4000).transform((v) => v.split(/\s+/).filter(Boolean)),
  ttl: z.coerce.number().int(),
};
const createForm = formSchema({ clientId: z.string().trim().max(64), ...fields });
const editForm = formSchema({ ...fields, disabled: z.literal('on').optional() });

const inputOf = (f: z.infer<typeof editForm>): ClientInput => ({ grantTypes: f.grantTypes, scopes: f.scopes, redirectUris: f.redirectUris, accessTokenTtl: f.ttl });

export function clientsRoutes(r: Router, web: AdminWeb): void {
  const merchantOf = (ctx: Context) => {
    const m = web.config.merchants.find((x) => x.id === ctx.params.id);
    if (!m) throw new AppError('request.not_found');
    assertMerchant(principal(ctx), m.id);
    return m;
  };
  const clientOf = async (ctx: Context): Promise<UiClientRow> => {
    const c = await findUiClient(web.db, ctx.params.clientId ?? '');
    if (!c) throw new AppError('request.not_found');
    assertMerchant(principal(ctx), c.merchant_id);
    return c;
  };
  const form = (ctx: Context, model: { title: string; [k: string]: unknown }, status = 200) =>
    renderAdmin(ctx, web, 'client', { grantChoices: grantTypes, scopeChoices: clientScopes, ...model }, status);
  const blank = { clientId: '', grantTypes: ['client_credentials'], scopes: [] as string[], redirectUris: [] as string[], ttl: 600, disabled: false };
  const problem = (err: unknown) => (err instanceof AppError && (err.code === 'request.invalid' || err.code === 'request.conflict') ? (err.publicMessage ?? err.code) : null);

  r.get('/merchants/:id/clients/new', auth(web, 'merchants.write'), (ctx) => {
    const m = merchantOf(ctx);
    form(ctx, { title: `New client for ${m.name}`, merchant: m.id, c: blank, isNew: true });
  });

  r.post('/merchants/:id/clients', auth(web, 'merchants.write'), fresh((ctx) => `/admin/merchants/${ctx.params.id ?? ''}/clients/new`), async (ctx) => {
    const m = merchantOf(ctx);
    const f = await readForm(ctx, web, createForm);
    try {
      const { secret } = await web.clients.create({ merchantId: m.id, clientId: f.clientId, input: inputOf(f), who: who(ctx) });
      renderAdmin(ctx, web, 'client-secret', { title: 'Client secret', clientId: f.clientId, merchant: m.id, secret });
    } catch (err) {
      const msg = problem(err);
      if (!msg) throw err;
      form(ctx, { title: `New client for ${m.name}`, merchant: m.id, c: { ...blank, ...f }, isNew: true, error: msg }, 400);
    }
  });

  r.get('/clients/:clientId', auth(web, 'merchants.write'), async (ctx) => {
    const c = await clientOf(ctx);
    form(ctx, { title: `Client ${c.client_id}`, merchant: c.merchant_id, c: { clientId: c.client_id, grantTypes: c.grant_types, scopes: c.scopes, redirectUris: c.redirect_uris, ttl: c.access_token_ttl, disabled: c.disabled_at !== null } });
  });

  r.post('/clients/:clientId', auth(web, 'merchants.write'), fresh((ctx) => `/admin/clients/${encodeURIComponent(ctx.params.clientId ?? '')}`), async (ctx) => {
    const c = await clientOf(ctx);
    const f = await readForm(ctx, web, editForm);
    try {
      await web.clients.update({ client: c, input: inputOf(f), disabled: f.disabled === 'on', who: who(ctx) });
    } catch (err) {
      const msg = problem(err);
      if (!msg) throw err;
      return form(ctx, { title: `Client ${c.client_id}`, merchant: c.merchant_id, c: { ...f, clientId: c.client_id, disabled: f.disabled === 'on' }, error: msg }, 400);
    }
    see(ctx, `/admin/merchants/${c.merchant_id}`, `Client ${c.client_id} saved.`);
  });

  r.post('/clients/:clientId/secret', auth(web, 'merchants.write'), fresh((ctx) => `/admin/clients/${encodeURIComponent(ctx.params.clientId ?? '')}`), async (ctx) => {
    const c = await clientOf(ctx);
    await readForm(ctx, web, formSchema({}));
    const { secret } = await web.clients.newSecret({ client: c, who: who(ctx) });
    renderAdmin(ctx, web, 'client-secret', { title: 'Client secret', clientId: c.client_id, merchant: c.merchant_id, secret });
  });
}
