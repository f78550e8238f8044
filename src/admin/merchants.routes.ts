/**
 * Merchants, their official account and OAuth clients, as the config file declares them.
 * Secrets are write-only: a page says whether one is set, never what it is.
 * Clients can also be made here (clients.routes.ts).
 * TODO(#8): merchants and official accounts made in the UI need tables of their own too.
 */
import type Router from '@koa/router';
import { AppError } from '../http/errors.ts';
import { auth, principal, renderAdmin } from './guard.routes.ts';
import { listUiClients } from './clients.queries.ts';
import { assertMerchant, can, canSeeMerchant, scopeOf } from './policy.ts';
import type { AdminWeb } from './web.ts';

export function merchantsRoutes(r: Router, web: AdminWeb): void {
  const account = (id: string) => {
    const a = web.config.officialAccounts.find((x) => x.id === id);
    return a && { id: a.id, appId: a.appId, originalId: a.originalId, safeMode: !!a.encodingAesKey, tokenMethod: a.tokenMethod };
  };

  r.get('/merchants', auth(web, 'view'), (ctx) => {
    const p = principal(ctx);
    const merchants = web.config.merchants
      .filter((m) => canSeeMerchant(p, m.id))
      .map((m) => ({ id: m.id, name: m.name, account: account(m.officialAccount), clients: m.clients.length, linking: m.linking.map((l) => l.type), exclusive: m.binding.exclusive, webhook: !!m.webhook }));
    // Official accounts are shared by merchants: a scoped account sees only its own merchant's.
    const accounts = p.merchantId === null ? web.config.officialAccounts.map((a) => account(a.id)) : merchants.map((m) => m.account).filter(Boolean);
    renderAdmin(ctx, web, 'merchants', { title: 'Merchants', merchants, accounts, source: web.config.configFile ?? 'built-in demo configuration' });
  });

  r.get('/merchants/:id', auth(web, 'view'), async (ctx) => {
    const m = web.config.merchants.find((x) => x.id === ctx.params.id);
    if (!m) throw new AppError('request.not_found');
    assertMerchant(principal(ctx), m.id);
    renderAdmin(ctx, web, 'merchant', {
      title: m.name,
      uiClients: await listUiClients(web.db, scopeOf(principal(ctx)), m.id),
      canWrite: can(principal(ctx), 'merchants.write'),
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
}
