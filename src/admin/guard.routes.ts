/**
 * The small middlewares every admin endpoint stacks explicitly (STYLE.md: one check each):
 * `auth(perm)` loads the session and asks the policy; `fresh` wants a recent password +
 * TOTP check (ASVS 7.5.1); `readForm` checks the CSRF token before it parses a form with
 * a strict schema (ASVS 3.5.1). State changes are POST only (3.5.3). Refusals of a signed-in
 * admin are audited (16.3.2).
 */
import type { Context, Middleware, Next } from 'koa';
import { z } from 'zod';
import { readBody } from '../http/body.ts';
import { AppError } from '../http/errors.ts';
import { parseInput } from '../http/validate.ts';
import { renderPage } from '../http/views.ts';
import { adminActor, type ActorRef } from './audit.service.ts';
import type { AdminWeb } from './web.ts';
import { assertCan, can, canSeeMerchant, type Permission, type Principal } from './policy.ts';
import type { ResolvedSession } from './sessions.service.ts';

declare module 'koa' {
  interface DefaultState {
    admin?: ResolvedSession;
  }
}

export const SESSION_COOKIE = 'wxb_admin';
export const PRE_AUTH_COOKIE = 'wxb_admin_pre';

export const who = (ctx: Context): ActorRef => adminActor(principal(ctx).adminId, ctx.ip || null);
export const fromOf = (ctx: Context) => ({ ip: ctx.ip || null, userAgent: ctx.get('user-agent') || null });

export function principal(ctx: Context): Principal {
  const a = ctx.state.admin;
  if (!a) throw new AppError('request.unauthenticated');
  return a.principal;
}

/** Only our own /admin paths: the `next` parameter is never an open redirect. */
export function safeNext(v: unknown): string {
  return typeof v === 'string' && /^\/admin(\/[A-Za-z0-9/_\-.?=&%]*)?$/.test(v) && !v.startsWith('//') ? v : '/admin';
}

export function auth(web: AdminWeb, perm: Permission): Middleware {
  return async (ctx: Context, next: Next) => {
    const token = ctx.cookies.get(web.cookies.name(SESSION_COOKIE), { signed: true });
    const session = await web.sessions.resolve(token);
    if (!session) {
      const back = ctx.method === 'GET' ? `?next=${encodeURIComponent(ctx.originalUrl)}` : '';
      ctx.redirect(`/admin/login${back}`);
      ctx.status = 303;
      return;
    }
    ctx.state.admin = session;
    // A one-time password must be replaced before anything else is possible.
    // (SSO sessions never used the local password.)
    if (session.account.must_change_password && session.session.method !== 'sso' && ctx.path !== '/admin/account/password' && ctx.path !== '/admin/logout') {
      ctx.redirect('/admin/account/password');
      ctx.status = 303;
      return;
    }
    if (!can(session.principal, perm)) {
      await web.audit.record(who(ctx), { action: 'admin.access_denied', detail: { perm, path: ctx.path.slice(0, 200), method: ctx.method } });
      assertCan(session.principal, perm);
    }
    try {
      await next();
    } catch (err) {
      // Object-level refusals (another merchant's binding) are audited like function-level ones.
      if (err instanceof AppError && err.code === 'request.forbidden')
        await web.audit.record(who(ctx), { action: 'admin.access_denied', detail: { path: ctx.path.slice(0, 200), method: ctx.method } });
      throw err;
    }
  };
}

/** Sensitive actions: a password + TOTP check within the last few minutes, else re-authenticate first. */
export function fresh(back: string | ((ctx: Context) => string)): Middleware {
  return async (ctx, next) => {
    if (ctx.state.admin?.recentlyAuthenticated) return next();
    const to = typeof back === 'string' ? back : back(ctx);
    ctx.redirect(`/admin/reauth?next=${encodeURIComponent(safeNext(to))}`);
    ctx.status = 303;
  };
}

/** A form's fields plus its CSRF token, refused before any field is looked at when the token is wrong. */
export function formSchema<T extends z.ZodRawShape>(shape: T) {
  return z.object({ ...shape, _csrf: z.string() }).strict();
}

export async function readForm<S extends z.ZodType>(ctx: Context, web: AdminWeb, schema: S, limit = 64 * 1024): Promise<z.infer<S>> {
  const body = (await readBody(ctx, limit)) as Record<string, unknown>;
  web.csrf.verify(ctx, body._csrf);
  return parseInput(schema, body);
}

/** Times in pages: UTC, to the minute, one format everywhere. */
export const formatTime = (d: Date | string | null | undefined): string => {
  if (!d) return '—';
  const t = typeof d === 'string' ? new Date(d) : d;
  return Number.isNaN(t.getTime()) ? '—' : `${t.toISOString().slice(0, 16).replace('T', ' ')}Z`;
};

export function see(ctx: Context, path: string, done?: string): void {
  ctx.status = 303;
  ctx.redirect(done ? `${path}${path.includes('?') ? '&' : '?'}done=${encodeURIComponent(done)}` : path);
}

/** Renders a page inside the admin layout: navigation for what this role may open, the CSRF token, the notice of what was just done. */
export function renderAdmin(ctx: Context, web: AdminWeb, template: string, model: { title: string; [k: string]: unknown }, status = 200): void {
  const p = ctx.state.admin?.principal;
  const done = typeof ctx.query.done === 'string' ? ctx.query.done.slice(0, 200) : '';
  renderPage(
    ctx,
    web.views,
    `admin/${template}`,
    {
      lang: 'en',
      css: 'admin',
      csrf: web.csrf.token(ctx),
      path: ctx.path,
      done,
      fmt: formatTime,
      me: p ? { email: p.email, role: p.role, merchantId: p.merchantId } : null,
      nav: p ? web.nav.filter((n) => can(p, n.perm)).map((n) => ({ ...n, active: n.href === '/admin' ? ctx.path === '/admin' : ctx.path.startsWith(n.href) })) : [],
      ...model,
    },
    status,
  );
}

/** The merchants this admin may see: the choices of every merchant filter. */
export function visibleMerchants(ctx: Context, web: AdminWeb) {
  const p = principal(ctx);
  return web.config.merchants.filter((m) => canSeeMerchant(p, m.id)).map((m) => ({ id: m.id, name: m.name, officialAccount: m.officialAccount }));
}

/** Query values worth keeping in a link (paging, export): the non-empty strings. */
export function stripEmpty(v: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== ''));
}

/** `admin:<id>` → the admin's email, so audit rows read as people rather than ids. */
export async function actorNames(web: AdminWeb): Promise<Record<string, string>> {
  return Object.fromEntries((await web.accounts.list()).map((a) => [`admin:${a.id}`, a.email]));
}
