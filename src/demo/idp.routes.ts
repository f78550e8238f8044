/**
 * The demo merchant's identity provider (DESIGN.md "Demo mode"): a real OpenID Provider
 * (oidc-provider) at `/demo/idp`, so the `oidc` proof runs openid-client against the same
 * protocol a bank's IdP speaks: code + PKCE (required) + nonce, signed ID tokens whose
 * claims include `card_masked`. Its login page is ours: a tiny form for the demo customers.
 * The first-party client `wxbridge` is granted what it asks for, so there is no consent page.
 */
import Router from '@koa/router';
import { exportJWK, generateKeyPair } from 'jose';
import Koa from 'koa';
import Provider, { type ErrorOut, type KoaContextWithOIDC } from 'oidc-provider';
import { z } from 'zod';
import type { AppConfig } from '../config/index.ts';
import { DEMO_SECRETS } from '../config/demo.ts';
import { readBody } from '../http/body.ts';
import type { Csrf } from '../http/csrf.ts';
import { AppError } from '../http/errors.ts';
import { parseInput } from '../http/validate.ts';
import { renderPage, type Views } from '../http/views.ts';
import { safeEqual } from '../security/secrets.ts';
import { cardAccountId, DEMO_CUSTOMERS, DEMO_PASSWORD, maskCard } from './demo-bank.ts';
import { createMemoryAdapterClass } from './idp-adapter.ts';

export const DEMO_IDP_PREFIX = '/demo/idp';
const LOGIN_PREFIX = '/demo/idp-login';

export interface DemoIdpDeps {
  config: Pick<AppConfig, 'publicUrl' | 'merchants'>;
  views: Views;
  csrf: Csrf;
  /** Signs the provider's own cookies. */
  cookieKey: string;
}

export interface DemoIdp {
  /** Mounted at DEMO_IDP_PREFIX. */
  app: Koa;
  /** The login interaction pages, on the main app. */
  routes: Router;
}

const byUsername = (u: string) => DEMO_CUSTOMERS.find((c) => c.username === u);
const bySub = (sub: string) => DEMO_CUSTOMERS.find((c) => cardAccountId(c.card) === sub);

const loginForm = z.object({ _csrf: z.string(), username: z.string().max(64), password: z.string().max(128) }).strict();

export async function createDemoIdp(deps: DemoIdpDeps): Promise<DemoIdp> {
  const issuer = `${deps.config.publicUrl}${DEMO_IDP_PREFIX}`;
  // Every merchant whose `oidc` method points at this provider gets its callback registered.
  const redirectUris = deps.config.merchants
    .filter((m) => m.linking.some((l) => l.type === 'oidc' && l.issuer === issuer))
    .map((m) => `${deps.config.publicUrl}/link/${m.id}/oidc/callback`);
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'demo-idp-1', alg: 'ES256', use: 'sig' };

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'wxbridge',
        client_secret: DEMO_SECRETS.oidc,
        redirect_uris: redirectUris.length ? redirectUris : [`${deps.config.publicUrl}/link/card/oidc/callback`],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: [jwk] },
    adapter: createMemoryAdapterClass(),
    cookies: { keys: [deps.cookieKey] },
    claims: { openid: ['sub', 'card_masked', 'name'] },
    // The demo client reads its account from the ID token, as DESIGN.md's `oidc` proof does.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AuthorizationCode: 60, AccessToken: 600, IdToken: 600 },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `${LOGIN_PREFIX}/${interaction.uid}` },
    async findAccount(_ctx: unknown, sub: string) {
      const c = bySub(sub);
      if (!c) return undefined;
      return { accountId: sub, claims: () => ({ sub, card_masked: maskCard(c.card), name: c.name }) };
    },
    async loadExistingGrant(ctx: KoaContextWithOIDC) {
      const { oidc } = ctx;
      const id = oidc.result?.consent?.grantId ?? (oidc.client ? oidc.session?.grantIdFor(oidc.client.clientId) : undefined);
      if (id) return oidc.provider.Grant.find(id);
      if (!oidc.client || !oidc.session?.accountId) return undefined;
      const grant = new oidc.provider.Grant({ accountId: oidc.session.accountId, clientId: oidc.client.clientId });
      const scope = oidc.params?.scope;
      grant.addOIDCScope(typeof scope === 'string' ? scope : 'openid');
      await grant.save();
      return grant;
    },
    renderError(ctx: KoaContextWithOIDC, out: ErrorOut) {
      ctx.type = 'html';
      ctx.body = deps.views.render('errors/error', { title: 'Demo IdP', status: ctx.status, message: String(out.error_description ?? out.error ?? 'error'), hint: '' });
    },
  });

  // The provider builds its URLs from the part of the path the mount removed (req.originalUrl).
  const app = new Koa();
  app.use(async (ctx) => {
    (ctx.req as { originalUrl?: string }).originalUrl = `${DEMO_IDP_PREFIX}${ctx.req.url ?? ''}`;
    ctx.respond = false;
    await provider.callback()(ctx.req, ctx.res);
  });

  const routes = new Router();
  async function render(ctx: Koa.Context, error: string | null, status = 200): Promise<void> {
    const details = await provider.interactionDetails(ctx.req, ctx.res).catch(() => null);
    if (!details) throw new AppError('request.not_found', 'this sign-in has expired; start again');
    renderPage(
      ctx,
      deps.views,
      'demo/idp-login',
      {
        title: '演示银行登录 Demo bank sign-in',
        css: 'link',
        bodyClass: 'link',
        action: `${LOGIN_PREFIX}/${details.uid}/login`,
        customers: DEMO_CUSTOMERS.map((c) => ({ username: c.username, name: c.name, masked: maskCard(c.card) })),
        password: DEMO_PASSWORD,
        error,
        csrf: deps.csrf.token(ctx),
      },
      status,
    );
  }

  routes.get(`${LOGIN_PREFIX}/:uid`, (ctx) => render(ctx, null));
  routes.post(`${LOGIN_PREFIX}/:uid/login`, async (ctx) => {
    const form = parseInput(loginForm, await readBody(ctx, 4 * 1024));
    deps.csrf.verify(ctx, form._csrf);
    const c = byUsername(form.username.trim().toLowerCase());
    if (!c || !safeEqual(form.password, DEMO_PASSWORD)) return render(ctx, '用户名或密码错误。 Wrong username or password.', 400);
    ctx.respond = false;
    await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: cardAccountId(c.card) } }, { mergeWithLastSubmission: false });
  });

  return { app, routes };
}
