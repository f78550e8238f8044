/**
 * Merchants: the effective config (the file, and what admins made or edited here), where
 * each came from, and the forms that create and edit them (config-overlay.service.ts).
 * Secrets are write-only: a page says whether one is set, never what it is. Creating a
 * merchant needs an unscoped admin; a merchant-scoped admin edits only its own merchant and
 * cannot move it to another official account. Forms need a fresh password + TOTP check.
 * Clients are made on the merchant's page (clients.routes.ts).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { MerchantConfig } from '../config/index.ts';
import { AppError } from '../http/errors.ts';
import { listUiClients } from './clients.queries.ts';
import { merchantDoc, merchantForm, merchantView, merchantViewOfForm } from './config-overlay.forms.ts';
import { formProblem, type ConfigPages } from './config-overlay.routes.ts';
import { auth, fresh, principal, readForm, renderAdmin, see, who } from './guard.routes.ts';
import { assertMerchant, can, canSeeMerchant, scopeOf } from './policy.ts';
import type { AdminWeb } from './web.ts';

export function merchantsRoutes(r: Router, web: AdminWeb, pages: ConfigPages): void {
  const account = (id: string) => {
    const a = web.config.officialAccounts.find((x) => x.id === id);
    return a && { id: a.id, appId: a.appId, originalId: a.originalId, safeMode: !!a.encodingAesKey, tokenMethod: a.tokenMethod };
  };
  const merchantOf = (ctx: Context): MerchantConfig => {
    const m = web.config.merchants.find((x) => x.id === ctx.params.id);
    if (!m) throw new AppError('request.not_found');
    assertMerchant(principal(ctx), m.id);
    return m;
  };
  const form = (ctx: Context, model: { title: string; isNew: boolean; m: ReturnType<typeof merchantView>; version: number; [k: string]: unknown }, status = 200) =>
    renderAdmin(ctx, web, 'merchant-form', { accounts: web.config.officialAccounts.map((a) => a.id), lockAccount: principal(ctx).merchantId !== null, ...model }, status);

  r.get('/merchants', auth(web, 'view'), async (ctx) => {
    const p = principal(ctx);
    const sources = await pages.sources();
    const merchants = web.config.merchants
      .filter((m) => canSeeMerchant(p, m.id))
      .map((m) => ({ id: m.id, name: m.name, account: account(m.officialAccount), clients: m.clients.length, linking: m.linking.map((l) => l.type), exclusive: m.binding.exclusive, webhook: !!m.webhook, source: sources('merchant', m.id) }));
    // Official accounts are shared by merchants: a scoped account sees only its own merchant's.
    const accounts = (p.merchantId === null ? web.config.officialAccounts.map((a) => account(a.id)) : merchants.map((m) => m.account))
      .filter((a) => !!a)
      .map((a) => ({ ...a, source: sources('official_account', a.id) }));
    renderAdmin(ctx, web, 'merchants', {
      title: 'Merchants',
      merchants,
      accounts,
      source: web.config.configFile ?? 'built-in demo configuration',
      canCreate: can(p, 'merchants.create'),
      canEditAccounts: can(p, 'accounts.write'),
    });
  });

  r.get('/merchants/new', auth(web, 'merchants.create'), fresh('/admin/merchants/new'), (ctx) => {
    form(ctx, { title: 'New merchant', isNew: true, m: merchantView(undefined), version: 0 });
  });

  r.post('/merchants', auth(web, 'merchants.create'), fresh('/admin/merchants/new'), async (ctx) => {
    const f = await readForm(ctx, web, merchantForm);
    try {
      await pages.overlay.save({ kind: 'merchant', id: f.id, doc: merchantDoc(f, undefined, false), expectedVersion: null, who: who(ctx) });
    } catch (err) {
      const error = formProblem(err);
      return form(ctx, { title: 'New merchant', isNew: true, m: merchantViewOfForm(f, undefined), version: 0, error }, (err as AppError).status);
    }
    see(ctx, `/admin/merchants/${f.id}`, `Merchant ${f.id} created.`);
  });

  r.get('/merchants/:id', auth(web, 'view'), async (ctx) => {
    const m = merchantOf(ctx);
    const p = principal(ctx);
    renderAdmin(ctx, web, 'merchant', {
      title: m.name,
      uiClients: await listUiClients(web.db, scopeOf(p), m.id),
      canWrite: can(p, 'merchants.write'),
      source: (await pages.sources())('merchant', m.id),
      m: {
        id: m.id,
        name: m.name,
        profile: m.profile,
        exposeWeChatIds: m.exposeWeChatIds,
        binding: m.binding,
        account: account(m.officialAccount),
        linking: m.linking.map((l) => ({ type: l.type, label: l.label ?? '', target: l.type === 'oidc' ? l.issuer : l.type === 'verify-api' ? l.url : `codes live ${l.ttlSeconds} s`, secretSet: l.type !== 'binding-code' })),
        clients: m.clients.map((c) => ({ clientId: c.clientId, grantTypes: c.grantTypes, scopes: c.scopes, redirectUris: c.redirectUris, auth: c.tokenEndpointAuthMethod ?? (c.jwks ? 'private_key_jwt' : 'client_secret_basic'), secretSet: !!c.clientSecret, ttl: c.accessTokenTtl })),
        webhook: m.webhook ? { url: m.webhook.url } : null,
        intents: m.intents ? { url: m.intents.url, keywords: Object.keys(m.intents.keywords).length, menuKeys: Object.keys(m.intents.menuKeys).length } : null,
        templates: Object.entries(m.notices.templates).map(([name, t]) => ({ name, templateId: t.templateId, fields: Object.keys(t.fields).join(', ') })),
        channel: m.notices.channel,
      },
    });
  });

  r.get('/merchants/:id/edit', auth(web, 'merchants.write'), fresh((ctx) => `/admin/merchants/${ctx.params.id ?? ''}/edit`), async (ctx) => {
    const m = merchantOf(ctx);
    const row = await pages.overlay.find('merchant', m.id);
    form(ctx, { title: `Edit ${m.name}`, isNew: false, m: merchantView(m), version: row?.version ?? 0, fromFile: pages.inFile('merchant', m.id), edited: !!row });
  });

  r.post('/merchants/:id', auth(web, 'merchants.write'), fresh((ctx) => `/admin/merchants/${ctx.params.id ?? ''}/edit`), async (ctx) => {
    const m = merchantOf(ctx);
    const f = await readForm(ctx, web, merchantForm);
    const lock = principal(ctx).merchantId !== null;
    try {
      await pages.overlay.save({ kind: 'merchant', id: m.id, doc: merchantDoc(f, m, lock), expectedVersion: f.version, who: who(ctx) });
    } catch (err) {
      const error = formProblem(err);
      return form(ctx, { title: `Edit ${m.name}`, isNew: false, m: merchantViewOfForm(f, m), version: f.version, fromFile: pages.inFile('merchant', m.id), error }, (err as AppError).status);
    }
    see(ctx, `/admin/merchants/${m.id}`, `Merchant ${m.id} saved.`);
  });
}
