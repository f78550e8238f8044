/**
 * The admin feature (issue 8): `/admin`, server-rendered, for the people who run a
 * deployment. This file only assembles it: the services (services.ts), the ports to
 * other features (web.ts) and one routes module per page group.
 */
import Router from '@koa/router';
import type { CookiePolicy } from '../http/cookies.ts';
import type { Csrf } from '../http/csrf.ts';
import type { Feature } from '../http/feature.ts';
import type { Views } from '../http/views.ts';
import { accountRoutes } from './account.routes.ts';
import { adminsRoutes } from './admins.routes.ts';
import { auditRoutes } from './audit.routes.ts';
import { bindingsRoutes } from './bindings.routes.ts';
import { clientsRoutes } from './clients.routes.ts';
import { dashboardRoutes } from './dashboard.routes.ts';
import { deliveriesRoutes } from './deliveries.routes.ts';
import { identityRoutes } from './identity.routes.ts';
import { importRoutes } from './import.routes.ts';
import { keysRoutes } from './keys.routes.ts';
import { loginRoutes } from './login.routes.ts';
import { merchantsRoutes } from './merchants.routes.ts';
import type { ConfigSync } from '../config/overlay.sync.ts';
import { configOverlayRoutes, createConfigPages } from './config-overlay.routes.ts';
import { createConfigOverlayService } from './config-overlay.service.ts';
import { createOidcConnector } from '../linking/oidc.connector.ts';
import { createAdminServices, type AdminServiceDeps } from './services.ts';
import { ssoRoutes } from './sso.routes.ts';
import { createSsoService, type AdminSsoConfig } from './sso.service.ts';
import type { AdminPolicy } from './settings.ts';
import { adminNav, type AdminPorts, type AdminWeb } from './web.ts';

export interface AdminFeature extends Feature {
  /** Demo mode: the first admin account, made once; the lines to print in the start banner. */
  demoBanner(): Promise<string[]>;
}

export const DEMO_ADMIN_EMAIL = 'admin@demo.local';

export function createAdminFeature(
  core: AdminServiceDeps & { views: Views; csrf: Csrf; cookies: CookiePolicy; fetch: typeof fetch },
  ports: AdminPorts,
  opts: { policy?: AdminPolicy; sso?: AdminSsoConfig; configSync: ConfigSync },
): AdminFeature {
  const services = createAdminServices(core, opts.policy);
  const sso = opts.sso
    ? createSsoService({ sso: opts.sso, redirectUri: `${core.config.publicUrl}/admin/sso/callback`, connector: createOidcConnector({ fetch: core.fetch }), kv: core.kv, db: core.db, now: core.now, sessions: services.sessions, audit: services.audit, merchantExists: (id) => core.config.merchants.some((m) => m.id === id) })
    : undefined;
  const web: AdminWeb = { ...core, ...services, ports, nav: adminNav, ssoLabel: sso?.label };
  const router = new Router({ prefix: '/admin' });
  loginRoutes(router, web);
  if (sso) ssoRoutes(router, web, sso);
  accountRoutes(router, web);
  dashboardRoutes(router, web);
  // Before bindings: /bindings/import and /bindings/export.csv must not be read as /bindings/:id.
  importRoutes(router, web);
  bindingsRoutes(router, web);
  identityRoutes(router, web);
  auditRoutes(router, web);
  keysRoutes(router, web);
  deliveriesRoutes(router, web);
  // Merchants and official accounts made or edited here: the config overlay (config/overlay.ts).
  const configPages = createConfigPages(
    createConfigOverlayService({ db: core.db, secrets: core.secrets, now: core.now, audit: services.audit, live: opts.configSync.live, sync: opts.configSync, allowHttp: core.config.mode === 'demo', outbound: core.config.outbound }),
    opts.configSync,
  );
  merchantsRoutes(router, web, configPages);
  configOverlayRoutes(router, web, configPages);
  clientsRoutes(router, web);
  adminsRoutes(router, web);

  return {
    name: 'admin',
    routes: router,
    async demoBanner() {
      const made = await services.accounts.createFirstDemoAdmin(DEMO_ADMIN_EMAIL);
      const url = `${core.config.publicUrl}/admin`;
      if (!made) return [`    Admin UI .............. ${url} (sign in with the account printed at the first start)`];
      // Printed once, to stdout only (never the logger): the demo first-admin rule.
      return [
        `    Admin UI .............. ${url}`,
        `      first admin: ${made.account.email}   one-time password: ${made.oneTimePassword}`,
        '      (shown only now: change it and set up two-step verification at the first sign-in)',
      ];
    },
  };
}
