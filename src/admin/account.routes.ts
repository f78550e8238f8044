/**
 * The signed-in admin's own account: live sessions (end any of them), password change
 * (forced after a one-time password), and re-authentication before sensitive actions.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { passwordProblem } from './accounts.service.ts';
import { auth, formSchema, fromOf, readForm, renderAdmin, safeNext, see, who } from './guard.routes.ts';
import type { AdminWeb } from './web.ts';

const passwordForm = formSchema({ current: z.string().max(1024), next: z.string().max(1024), confirm: z.string().max(1024) });
const reauthForm = formSchema({ password: z.string().max(1024), code: z.string().max(20), next: z.string().max(500).optional() });

export function accountRoutes(r: Router, web: AdminWeb): void {
  r.get('/account', auth(web, 'view'), async (ctx) => {
    const p = ctx.state.admin!.principal;
    const sessions = await web.sessions.list({ adminId: p.adminId });
    renderAdmin(ctx, web, 'account', { title: 'My account', sessions: sessions.map((s) => ({ ...s, current: s.id === p.sessionId })) });
  });

  r.post('/account/sessions/:id/revoke', auth(web, 'view'), async (ctx) => {
    await readForm(ctx, web, formSchema({}));
    const p = ctx.state.admin!.principal;
    // Own sessions only here; ending other admins' sessions is on the Admins page.
    const ended = await web.sessions.revoke({ id: ctx.params.id ?? '', by: `admin:${p.adminId}`, adminId: p.adminId });
    if (ended) await web.audit.record(who(ctx), { action: 'admin.session_revoked', detail: { session: ended.id.slice(0, 8), admin: p.adminId } });
    see(ctx, '/admin/account', ended ? 'Session ended.' : undefined);
  });

  const showPassword = (ctx: Context, error = '', status = 200) =>
    renderAdmin(ctx, web, 'password', { title: 'Change password', error, forced: ctx.state.admin!.account.must_change_password }, status);

  r.get('/account/password', auth(web, 'view'), (ctx) => showPassword(ctx));

  r.post('/account/password', auth(web, 'view'), async (ctx) => {
    const f = await readForm(ctx, web, passwordForm);
    if (f.next !== f.confirm) return showPassword(ctx, 'The two new passwords differ.', 400);
    const problem = passwordProblem(f.next);
    if (problem) return showPassword(ctx, `The new password needs ${problem}.`, 400);
    const p = ctx.state.admin!.principal;
    const res = await web.accounts.changePassword({ adminId: p.adminId, current: f.current, next: f.next, who: who(ctx), sessionId: p.sessionId });
    if (res === 'wrong_password') return showPassword(ctx, 'The current password is wrong.', 400);
    if (res === 'weak') return showPassword(ctx, 'Choose a new password different from the current one.', 400);
    see(ctx, '/admin/account', 'Password changed. Your other sessions were ended.');
  });

  const showReauth = (ctx: Context, error = '', status = 200) =>
    renderAdmin(ctx, web, 'reauth', {
      title: 'Confirm it is you',
      error,
      next: safeNext(ctx.query.next ?? ''),
      // [sso] An SSO session has no local password: it confirms at the company's provider.
      ssoReauth: ctx.state.admin?.session.method === 'sso' && web.ssoLabel ? { label: web.ssoLabel } : null,
    }, status);

  r.get('/reauth', auth(web, 'view'), (ctx) => showReauth(ctx));

  r.post('/reauth', auth(web, 'view'), async (ctx) => {
    const f = await readForm(ctx, web, reauthForm);
    const ok = await web.signin.reauth({ principal: ctx.state.admin!.principal, password: f.password, code: f.code, from: fromOf(ctx) });
    ctx.query = { next: f.next ?? '' };
    if (!ok) return showReauth(ctx, 'Password or code is wrong.', 401);
    see(ctx, safeNext(f.next), 'Confirmed. You can go on for a few minutes.');
  });
}
