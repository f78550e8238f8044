/**
 * "My linked accounts" (`GET /link/:merchant`, DESIGN.md routes): the user's bindings at this
 * merchant, the proof methods to add another, set default and unlink (after a confirmation
 * page). Without a session for the merchant's official account the user goes through WeChat
 * login first and comes back here. Every form carries the CSRF token; flashes are a fixed
 * vocabulary, so nothing from the URL is echoed into the page.
 */
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import type { MerchantConfig } from '../config/index.ts';
import type { Csrf } from '../http/csrf.ts';
import { readBody } from '../http/body.ts';
import { AppError } from '../http/errors.ts';
import { parseInput } from '../http/validate.ts';
import type { Views } from '../http/views.ts';
import type { BindingsService } from './bindings.service.ts';
import { loginHref, renderLink, tr, type T } from './link-page.routes.ts';
import type { LoginFlowService } from './login-flow.service.ts';
import { safeNextPath } from './next-path.ts';
import type { Binding, EndUserSession } from './types.ts';
import type { WebSession } from './web-session.routes.ts';

export interface LinkContextDeps {
  views: Views;
  csrf: Csrf;
  merchant: (id: string) => MerchantConfig | undefined;
  loginFlow: Pick<LoginFlowService, 'accountOf'>;
  web: WebSession;
  bindings: BindingsService;
}

export const FLASHES = ['linked', 'already', 'unlinked', 'default', 'conflict', 'limit'] as const;
export type Flash = (typeof FLASHES)[number];

/** Where proof pages send the user back to, keeping a valid `next`. */
export function accountsHref(merchantId: string, done?: Flash, next?: string | null): string {
  const qs = new URLSearchParams();
  if (done) qs.set('done', done);
  if (next) qs.set('next', next);
  const s = qs.toString();
  return `/link/${encodeURIComponent(merchantId)}${s ? `?${s}` : ''}`;
}

/** The merchant of the URL and the user's session for its official account, or a 302 to login. */
export async function linkContext(
  ctx: Context,
  deps: LinkContextDeps,
): Promise<{ m: MerchantConfig; session: EndUserSession; next: string | null } | null> {
  const m = deps.merchant(ctx.params.merchant ?? '');
  if (!m) throw new AppError('request.not_found');
  const rawNext = typeof ctx.query.next === 'string' ? ctx.query.next : undefined;
  const next = rawNext === undefined ? null : safeNextPath(rawNext);
  if (rawNext !== undefined && next === null) throw new AppError('request.invalid', 'next must be a path on this site');
  const session = await deps.web.read(ctx);
  if (!session || session.appId !== deps.loginFlow.accountOf(m.id)?.appId) {
    if (ctx.method !== 'GET') throw new AppError('request.unauthenticated', 'your session ended; open the page again');
    ctx.redirect(loginHref(m.id, ctx.originalUrl));
    return null;
  }
  return { m, session, next };
}

export type LinkCtx = NonNullable<Awaited<ReturnType<typeof linkContext>>>;

/** A handler that runs only with the merchant and the user's session (else the user goes to login). */
export function linkRoute(deps: LinkContextDeps, handler: (ctx: Context, c: LinkCtx) => Promise<void>): Middleware {
  return async (ctx) => {
    const c = await linkContext(ctx, deps);
    if (c) await handler(ctx, c);
  };
}

const formSchema = z.object({ _csrf: z.string(), binding: z.string().max(64).optional(), next: z.string().max(1024).optional() }).strict();

function methodLinks(m: MerchantConfig, t: T, next: string | null) {
  const q = next ? `?next=${encodeURIComponent(next)}` : '';
  return m.linking.map((l) => {
    const base = `/link/${encodeURIComponent(m.id)}`;
    if (l.type === 'oidc')
      return { kind: 'oidc', glyph: t('glyph_oidc'), href: `${base}/oidc${q}`, label: l.label ?? t('via_oidc', { merchant: m.name }), hint: t('methodOidcHint', { merchant: m.name }) };
    if (l.type === 'verify-api') return { kind: 'verify', glyph: t('glyph_verify'), href: `${base}/verify${q}`, label: l.label ?? t('via_verify'), hint: t('methodVerifyHint') };
    return { kind: 'code', glyph: t('glyph_code'), href: `${base}/code${q}`, label: l.label ?? t('via_code'), hint: t('methodCodeHint', { merchant: m.name }) };
  });
}

export function bindingView(b: Binding, t: T, locale: string) {
  return {
    id: b.id,
    display: b.accountDisplay ?? b.accountId,
    isDefault: b.isDefault,
    proof: t(`proof_${b.proof}`),
    linkedAt: t('linkedAt', { date: b.provenAt.toLocaleDateString(locale === 'en' ? 'en-GB' : 'zh-CN', { timeZone: 'Asia/Shanghai' }) }),
  };
}

export function createAccountsRoutes(deps: LinkContextDeps): Router {
  const router = new Router();

  async function readForm(ctx: Context) {
    const form = parseInput(formSchema, await readBody(ctx, 8 * 1024));
    deps.csrf.verify(ctx, form._csrf);
    const next = form.next ? safeNextPath(form.next) : null;
    return { binding: form.binding, next };
  }

  async function ownBinding(merchantId: string, session: EndUserSession, id: string | undefined): Promise<Binding> {
    const b = id ? await deps.bindings.getBinding(id) : null;
    // Someone else's binding does not exist for this user.
    if (!b || b.merchantId !== merchantId || b.identityId !== session.identityId || b.status !== 'active') throw new AppError('linking.not_found');
    return b;
  }

  router.get('/link/:merchant', linkRoute(deps, async (ctx, c) => {
    const t = tr(ctx);
    const [identity, bindings] = await Promise.all([
      deps.bindings.getIdentity(c.session.identityId),
      deps.bindings.listBindings({ merchantId: c.m.id, identityId: c.session.identityId, status: 'active' }),
    ]);
    const done = FLASHES.find((f) => f === ctx.query.done);
    const max = c.m.binding.maxAccountsPerUser;
    const flashText: Record<Flash, string> = {
      linked: t('flashLinked'),
      already: t('flashAlready'),
      unlinked: t('flashUnlinked'),
      default: t('flashDefault'),
      conflict: t('flashConflict', { merchant: c.m.name }),
      limit: t('flashLimit', { max }),
    };
    renderLink(ctx, deps.views, 'accounts', {
      title: t('accountsTitle'),
      t,
      merchant: { id: c.m.id, name: c.m.name },
      user: { nickname: identity?.nickname ?? null, avatarUrl: identity?.avatarUrl ?? null },
      bindings: bindings.map((b) => bindingView(b, t, ctx.state.locale)),
      methods: bindings.length >= max ? [] : methodLinks(c.m, t, c.next),
      atLimit: bindings.length >= max,
      max,
      flash: done ? { kind: done === 'conflict' || done === 'limit' ? 'error' : 'ok', text: flashText[done] } : null,
      next: c.next,
      csrf: deps.csrf.token(ctx),
    });
  }));

  router.post('/link/:merchant/default', linkRoute(deps, async (ctx, c) => {
    const form = await readForm(ctx);
    const b = await ownBinding(c.m.id, c.session, form.binding);
    await deps.bindings.setDefault({ merchantId: c.m.id, identityId: c.session.identityId, bindingId: b.id, actor: `user:${c.session.identityId}` });
    ctx.status = 303;
    ctx.redirect(accountsHref(c.m.id, 'default', form.next));
  }));

  router.get('/link/:merchant/unlink/:binding', linkRoute(deps, async (ctx, c) => {
    const b = await ownBinding(c.m.id, c.session, ctx.params.binding);
    const t = tr(ctx);
    renderLink(ctx, deps.views, 'unlink', {
      title: t('unlinkTitle'),
      t,
      merchant: { id: c.m.id, name: c.m.name },
      binding: bindingView(b, t, ctx.state.locale),
      action: `/link/${encodeURIComponent(c.m.id)}/unlink/${b.id}`,
      cancelHref: accountsHref(c.m.id, undefined, c.next),
      next: c.next,
      csrf: deps.csrf.token(ctx),
    });
  }));

  router.post('/link/:merchant/unlink/:binding', linkRoute(deps, async (ctx, c) => {
    const form = await readForm(ctx);
    const b = await ownBinding(c.m.id, c.session, ctx.params.binding);
    await deps.bindings.revokeBinding({ bindingId: b.id, merchantId: c.m.id, actor: `user:${c.session.identityId}`, reason: 'unlinked by the user', source: 'web' });
    ctx.status = 303;
    ctx.redirect(accountsHref(c.m.id, 'unlinked', form.next));
  }));

  return router;
}
