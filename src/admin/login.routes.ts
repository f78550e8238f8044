/**
 * /admin/login: password, then the TOTP code (or enrolment with a QR code at the first
 * sign-in), then a new session cookie; /admin/logout ends the session on the server.
 * Errors say "email or password is wrong" whichever it was (no account enumeration).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import QRCode from 'qrcode';
import { z } from 'zod';
import { auth, formSchema, fromOf, PRE_AUTH_COOKIE, readForm, renderAdmin, safeNext, see, SESSION_COOKIE, who } from './guard.routes.ts';
import type { AdminWeb } from './web.ts';

const loginForm = formSchema({ email: z.string().max(254), password: z.string().max(1024), next: z.string().max(500).optional() });
const codeForm = formSchema({ code: z.string().max(20), next: z.string().max(500).optional() });

const messages = {
  invalid: 'Email or password is wrong.',
  locked: 'Too many failed attempts. Sign-in is locked for a while; try again later or ask another admin.',
  badCode: 'That code is not right. Use the current code from your authenticator app.',
  expired: 'The sign-in took too long. Start again.',
};

export function loginRoutes(r: Router, web: AdminWeb): void {
  const preCookie = web.cookies.name(PRE_AUTH_COOKIE);
  const sessionCookie = web.cookies.name(SESSION_COOKIE);

  const showLogin = (ctx: Context, error = '', status = 200, email = '') =>
    renderAdmin(ctx, web, 'login', { title: 'Sign in', error, email, next: safeNext(ctx.query.next ?? ''), sso: web.ssoLabel ? { label: web.ssoLabel } : null, bodyClass: 'auth' }, status);

  async function showCode(ctx: Context, error = '', status = 200): Promise<void> {
    const preAuthId = ctx.cookies.get(preCookie, { signed: true }) ?? '';
    const pending = await web.signin.pending(preAuthId);
    if (!pending) return showLogin(ctx, messages.expired, 400);
    const next = safeNext(ctx.query.next ?? '');
    if (!pending.enrol) return renderAdmin(ctx, web, 'login-code', { title: 'Verification code', error, next, bodyClass: 'auth' }, status);
    const e = await web.signin.enrolment(preAuthId);
    if (!e) return showLogin(ctx, messages.expired, 400);
    const qr = `data:image/svg+xml;base64,${Buffer.from(await QRCode.toString(e.uri, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' })).toString('base64')}`;
    renderAdmin(ctx, web, 'login-enrol', { title: 'Set up two-step verification', error, next, qr, secret: e.secret.replace(/(.{4})/g, '$1 ').trim(), email: e.email, bodyClass: 'auth' }, status);
  }

  r.get('/login', (ctx) => showLogin(ctx));

  r.post('/login', async (ctx) => {
    const f = await readForm(ctx, web, loginForm);
    const res = await web.signin.passwordStep({ email: f.email, password: f.password, from: fromOf(ctx) });
    if (!res.ok) return showLogin(ctx, messages[res.reason], res.reason === 'locked' ? 429 : 401, f.email);
    ctx.cookies.set(preCookie, res.preAuthId, web.cookies.options({ sameSite: 'strict', maxAgeMs: web.policy.preAuthMs }));
    see(ctx, `/admin/login/code?next=${encodeURIComponent(safeNext(f.next))}`);
  });

  r.get('/login/code', (ctx) => showCode(ctx));

  r.post('/login/code', async (ctx) => {
    const f = await readForm(ctx, web, codeForm);
    const preAuthId = ctx.cookies.get(preCookie, { signed: true }) ?? '';
    const res = await web.signin.codeStep({ preAuthId, code: f.code, from: fromOf(ctx) });
    if (!res.ok) {
      if (res.reason === 'invalid') return showCode(ctx, messages.badCode, 401);
      ctx.cookies.set(preCookie, '', web.cookies.options({ sameSite: 'strict', maxAgeMs: 0 }));
      return showLogin(ctx, messages[res.reason], res.reason === 'locked' ? 429 : 400);
    }
    ctx.cookies.set(preCookie, '', web.cookies.options({ sameSite: 'strict', maxAgeMs: 0 }));
    // Strict: the admin session is never sent on a cross-site request (a second CSRF layer).
    ctx.cookies.set(sessionCookie, res.token, web.cookies.options({ sameSite: 'strict' }));
    see(ctx, safeNext(f.next));
  });

  r.post('/logout', auth(web, 'view'), async (ctx) => {
    await readForm(ctx, web, formSchema({}));
    const p = ctx.state.admin!.principal;
    await web.sessions.revoke({ id: p.sessionId, by: `admin:${p.adminId}` });
    await web.audit.record(who(ctx), { action: 'admin.signed_out' });
    ctx.cookies.set(sessionCookie, '', web.cookies.options({ sameSite: 'strict', maxAgeMs: 0 }));
    see(ctx, '/admin/login');
  });
}
