/**
 * Admin accounts (unscoped admins only): create (the one-time password is shown once),
 * change role, merchant scope or disable, reset TOTP, and end anyone's session (ASVS
 * 7.4.5). Changes need a fresh password + TOTP check and apply at the next request.
 */
import type Router from '@koa/router';
import { z } from 'zod';
import { AppError } from '../http/errors.ts';
import { auth, formSchema, fresh, principal, readForm, renderAdmin, see, who } from './guard.routes.ts';
import { roles } from './policy.ts';
import type { AdminWeb } from './web.ts';

const scopeField = z.string().max(40).transform((v) => (v === '' ? null : v));
const createForm = formSchema({ email: z.string().trim().max(254), role: z.enum(roles), merchant: scopeField });
const accessForm = formSchema({ role: z.enum(roles), merchant: scopeField, disabled: z.literal('on').optional() });

export function adminsRoutes(r: Router, web: AdminWeb): void {
  const merchants = web.config.merchants.map((m) => ({ id: m.id, name: m.name }));

  r.get('/admins', auth(web, 'admins.manage'), async (ctx) => {
    const [accounts, sessions] = await Promise.all([web.accounts.list(), web.sessions.list({})]);
    renderAdmin(ctx, web, 'admins', { title: 'Admins', accounts, sessions, merchants, roles, selfId: principal(ctx).adminId });
  });

  r.post('/admins', auth(web, 'admins.manage'), fresh('/admin/admins'), async (ctx) => {
    const f = await readForm(ctx, web, createForm);
    try {
      const made = await web.accounts.create({ email: f.email, role: f.role, merchantId: f.merchant, who: who(ctx) });
      // Shown once, in this response only (no redirect, so it never lands in history or a URL).
      renderAdmin(ctx, web, 'admin-created', { title: 'Admin created', account: made.account, oneTimePassword: made.oneTimePassword });
    } catch (err) {
      if (err instanceof AppError && (err.code === 'request.invalid' || err.code === 'request.conflict')) return see(ctx, '/admin/admins', `Not created: ${err.publicMessage ?? err.code}`);
      throw err;
    }
  });

  r.post('/admins/:id/access', auth(web, 'admins.manage'), fresh('/admin/admins'), async (ctx) => {
    const f = await readForm(ctx, web, accessForm);
    try {
      const a = await web.accounts.updateAccess({ id: ctx.params.id ?? '', role: f.role, merchantId: f.merchant, disabled: f.disabled === 'on', who: who(ctx) });
      see(ctx, '/admin/admins', `Access of ${a.email} changed.`);
    } catch (err) {
      if (err instanceof AppError && err.code === 'request.conflict') return see(ctx, '/admin/admins', err.publicMessage);
      throw err;
    }
  });

  r.post('/admins/:id/reset-totp', auth(web, 'admins.manage'), fresh('/admin/admins'), async (ctx) => {
    await readForm(ctx, web, formSchema({}));
    await web.accounts.resetTotp({ id: ctx.params.id ?? '', who: who(ctx) });
    see(ctx, '/admin/admins', 'Two-step verification reset: they set it up again at their next sign-in.');
  });

  r.post('/admins/sessions/:id/revoke', auth(web, 'admins.manage'), async (ctx) => {
    await readForm(ctx, web, formSchema({}));
    const ended = await web.sessions.revoke({ id: ctx.params.id ?? '', by: who(ctx).actor });
    if (ended) await web.audit.record(who(ctx), { action: 'admin.session_revoked', detail: { session: ended.id.slice(0, 8), admin: ended.admin_id } });
    see(ctx, '/admin/admins', ended ? 'Session ended.' : undefined);
  });
}
