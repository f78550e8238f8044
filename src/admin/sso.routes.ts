/**
 * /admin/sso: the company's OpenID Provider signs the admin in (sso.service.ts). The
 * callback arrives as a cross-site navigation, so the flow cookie is SameSite=Lax
 * (SECURITY.md A7, practical note). The session cookie is Strict, and a Strict cookie set
 * during a cross-site redirect chain is not sent on its next hop: the callback answers
 * with a page that moves on by itself (meta refresh, no script), a same-site navigation.
 */
import type Router from '@koa/router';
import { z } from 'zod';
import { parseInput } from '../http/validate.ts';
import { AppError } from '../http/errors.ts';
import { auth, fromOf, renderAdmin, safeNext, SESSION_COOKIE } from './guard.routes.ts';
import type { SsoService } from './sso.service.ts';
import type { AdminWeb } from './web.ts';

export const SSO_COOKIE = 'wxb_admin_sso';
const startQuery = z.object({ next: z.string().max(500).optional() }).strict();

const messages = {
  expired: 'The sign-in took too long or was started in another browser. Start again.',
  refused: 'The company sign-in did not complete.',
  no_account: 'Signed in at the company, but there is no admin account for you here. Ask an admin to add your email.',
  not_allowed: 'Signed in at the company, but your company account is not given any role here. Ask whoever runs the company sign-in for access.',
};

export function ssoRoutes(r: Router, web: AdminWeb, sso: SsoService): void {
  const flowCookie = web.cookies.name(SSO_COOKIE);

  r.get('/sso', async (ctx) => {
    const { next } = parseInput(startQuery, ctx.query);
    const start = await sso.begin(safeNext(next ?? ''));
    ctx.cookies.set(flowCookie, start.flowId, web.cookies.options({ sameSite: 'lax', maxAgeMs: 10 * 60_000 }));
    ctx.redirect(start.url);
  });

  // Re-authentication of an SSO session (no local password to ask for): at the provider again.
  r.get('/sso/reauth', auth(web, 'view'), async (ctx) => {
    const { next } = parseInput(startQuery, ctx.query);
    const s = ctx.state.admin!;
    if (s.session.method !== 'sso') throw new AppError('request.invalid', 'This session was not opened with single sign-on.');
    const start = await sso.beginReauth({ sessionId: s.session.id, adminId: s.principal.adminId, next: safeNext(next ?? '') });
    ctx.cookies.set(flowCookie, start.flowId, web.cookies.options({ sameSite: 'lax', maxAgeMs: 10 * 60_000 }));
    ctx.redirect(start.url);
  });

  r.get('/sso/callback', async (ctx) => {
    const flowId = ctx.cookies.get(flowCookie, { signed: true }) ?? '';
    ctx.cookies.set(flowCookie, '', web.cookies.options({ sameSite: 'lax', maxAgeMs: 0 }));
    // The URL registered at the provider, whatever Host this request came in on.
    const callbackUrl = new URL(ctx.originalUrl, web.config.publicUrl);
    const res = await sso.finish({ flowId, callbackUrl, from: fromOf(ctx) });
    if (!res.ok) return renderAdmin(ctx, web, 'login', { title: 'Sign in', error: messages[res.reason], email: '', next: '/admin', sso: { label: sso.label } }, 401);
    // The session cookie is already there (Strict, so it comes back on the same-site hop below).
    if ('reauthenticated' in res) return renderAdmin(ctx, web, 'continue', { title: 'Confirmed', to: safeNext(res.next) });
    ctx.cookies.set(web.cookies.name(SESSION_COOKIE), res.token, web.cookies.options({ sameSite: 'strict' }));
    renderAdmin(ctx, web, 'continue', { title: 'Signed in', to: safeNext(res.next) });
  });
}
