/**
 * The demo merchant system (DESIGN.md "Demo mode"), wired in demo/SANDBOX mode only: the
 * verify API at `/demo/merchant/:merchant/verify`, an OpenID Provider at `/demo/idp` with its
 * login page, and a cheat-sheet page. It stands where a bank's own systems would; wxbridge
 * talks to it over HTTP exactly as it would to a real merchant. (`src/demo/app*` is the demo
 * merchant web app of the OAuth feature, wired separately.)
 */
import Router from '@koa/router';
import type Koa from 'koa';
import type { CoreDeps } from '../deps.ts';
import type { Feature } from '../http/feature.ts';
import { createDemoVerifier } from './demo-bank.ts';
import { createDemoIdp } from './idp.routes.ts';
import { createDemoMerchantPage } from './merchant-page.routes.ts';
import { createDemoHooksRoutes } from './hooks.routes.ts';
import { createDemoVerifyRoutes } from './verify.routes.ts';

export { DEMO_IDP_PREFIX } from './idp.routes.ts';

export interface DemoMerchantFeature extends Feature {
  /** The OpenID Provider, to mount at DEMO_IDP_PREFIX. */
  readonly idp: Koa;
}

export async function createDemoMerchantFeature(deps: CoreDeps): Promise<DemoMerchantFeature> {
  const merchant = (id: string) => deps.config.merchants.find((m) => m.id === id);
  const idp = await createDemoIdp({
    config: deps.config,
    views: deps.views,
    csrf: deps.csrf,
    cookieKey: deps.secrets.deriveKey('demo-idp-cookies').toString('base64url'),
  });
  const router = new Router();
  const hooks = createDemoHooksRoutes({ merchant, publicUrl: deps.config.publicUrl });
  for (const r of [createDemoVerifyRoutes({ merchant, verifier: createDemoVerifier(deps.now) }), hooks, idp.routes, createDemoMerchantPage(deps)]) {
    router.use(r.routes(), r.allowedMethods());
  }
  return { name: 'demo-merchant', routes: router, idp: idp.app };
}

