/**
 * GET (and POST, OIDC Core §3.1.2.1) /oauth2/authorize and its continuation (RFC 6749
 * §4.1; DESIGN.md routes). The journey: validate → WeChat login (/wechat/login, linking's
 * contract) → link an account if the user has none at this merchant (/link/:merchant) → the
 * account chooser if they have several → a code to the verified redirect_uri. Only errors
 * that the service marks redirectable, raised after the client and redirect_uri were
 * verified, go back to the client; the rest are shown here (RFC 6749 §4.1.2.1, RFC 9700
 * §4.11.2): an escaped HTML page in the user's language for a browser, the RFC JSON body
 * (from the error handler) for a client that asks for JSON (node-oidc-provider does the
 * same by `Accept`).
 */
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import type { CookiePolicy } from '../http/cookies.ts';
import type { Csrf } from '../http/csrf.ts';
import { parseForm, readBody, readRawBody } from '../http/body.ts';
import { classify } from '../http/error-handler.ts';
import { AppError, OAuthError } from '../http/errors.ts';
import { translator, type Messages } from '../http/i18n.ts';
import { parseInput } from '../http/validate.ts';
import { renderPage, type Views } from '../http/views.ts';
import type { EndUserSession } from '../linking/types.ts';
import { randomId } from '../security/secrets.ts';
import { continuePath, type AuthorizationRequest, type AuthorizeService, type Decision } from './authorize.service.ts';
import { InvalidRequest } from './errors.ts';

const text: Messages<'title' | 'lead' | 'default' | 'continue' | 'cancel' | 'linkAnother'> = {
  'zh-CN': { title: '选择账户', lead: '您在{merchant}绑定了多个账户，请选择本次使用的账户。', default: '默认', continue: '继续', cancel: '取消', linkAnother: '绑定其他账户' },
  en: { title: 'Choose an account', lead: 'You have linked several accounts at {merchant}. Choose the one to use now.', default: 'Default', continue: 'Continue', cancel: 'Cancel', linkAnother: 'Link another account' },
};

const errorText: Messages<'heading' | 'lead' | 'hint' | 'codeLabel' | 'busyLead' | 'busyHint' | 'expiredLead'> = {
  'zh-CN': {
    heading: '无法继续登录',
    expiredLead: '这次登录已过期或已在其他浏览器中打开。',
    lead: '发起登录的应用提供的信息无法验证，为了您的安全，我们不会把您送回该应用。',
    hint: '请返回该应用重新尝试；如果问题持续，请联系该应用的客服。',
    codeLabel: '错误代码',
    busyLead: '服务暂时不可用，您的登录没有完成。',
    busyHint: '请稍后返回该应用重新尝试。',
  },
  en: {
    heading: 'This sign-in cannot continue',
    expiredLead: 'This sign-in has expired, or was opened in another browser.',
    lead: 'The app that sent you here gave details we cannot verify, so for your safety we will not send you back to it.',
    hint: 'Go back to the app and try again. If it keeps happening, contact the app’s support.',
    codeLabel: 'Error code',
    busyLead: 'The service is temporarily unavailable; your sign-in did not complete.',
    busyHint: 'Please go back to the app and try again in a moment.',
  },
};

/** A posted authorization request becomes a URL: keep it within what browsers and proxies take. */
const AUTHORIZE_FORM_LIMIT = 8 * 1024;

const choiceSchema = z
  .object({ _csrf: z.string(), req: z.string().min(1).max(64), action: z.enum(['continue', 'cancel']), binding: z.string().max(64).optional() })
  .strict();

export interface AuthorizeRoutesDeps {
  authorize: AuthorizeService;
  sessions: () => { read(ctx: Context): EndUserSession | null | Promise<EndUserSession | null> };
  cookies: CookiePolicy;
  csrf: Csrf;
  views: Views;
}

const isRedirectable = (err: unknown): err is OAuthError => err instanceof OAuthError && (err as { allowRedirect?: boolean }).allowRedirect === true;

export function createAuthorizeRoutes(deps: AuthorizeRoutesDeps): Router {
  const router = new Router();
  const cookie = deps.cookies.name('wxb_authz');

  /**
   * An error that reaches here is not redirected (the redirect_uri is unverified, or the
   * request is gone). A browser gets a page; a client asking for JSON, and any internal
   * error, go on to the error handler (RFC JSON, logged there).
   */
  async function shownToBrowsers(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
    } catch (err) {
      const r = classify(err, ctx);
      if (r.status === 500 || ctx.accepts('json', 'html') !== 'html') throw err;
      const fields = { errorCode: r.error, status: r.status, detail: (err as AppError).detail };
      if (r.status >= 500) ctx.state.log?.warn(fields, 'authorization request failed (shown, not redirected)');
      else ctx.state.log?.info(fields, 'authorization request refused (shown, not redirected)');
      const t = translator(errorText, ctx.state.locale);
      const busy = r.status === 503;
      const lead = busy ? 'busyLead' : r.error === 'flow.expired' ? 'expiredLead' : 'lead';
      ctx.set('Cache-Control', 'no-store');
      for (const [k, v] of Object.entries(r.headers ?? {})) ctx.set(k, v);
      renderPage(
        ctx,
        deps.views,
        'oauth/error',
        {
          title: t('heading'),
          t: { heading: t('heading'), lead: t(lead), hint: t(busy ? 'busyHint' : 'hint'), codeLabel: t('codeLabel') },
          status: r.status,
          error: r.error,
          description: r.description,
        },
        r.status,
      );
    }
  }

  /** A random id per browser; each pending request remembers a digest of it. */
  const browserId = (ctx: Context, create: boolean): string | undefined => {
    let id = ctx.cookies.get(cookie, { signed: true });
    if (!id && create) {
      id = randomId(18);
      // Lax: the journey comes back through top-level redirects (WeChat, linking pages).
      ctx.cookies.set(cookie, id, deps.cookies.options({ sameSite: 'lax', maxAgeMs: 12 * 3600_000 }));
    }
    return id;
  };

  async function act(ctx: Context, bid: string | undefined, id: string, r: AuthorizationRequest, session: EndUserSession | null): Promise<void> {
    const decision: Decision = await deps.authorize.decide(id, r, session);
    switch (decision.kind) {
      case 'login':
        return ctx.redirect(`/wechat/login?merchant=${encodeURIComponent(decision.merchantId)}&next=${encodeURIComponent(decision.next)}${decision.fresh ? '&fresh=1' : ''}`);
      case 'link':
        return ctx.redirect(`/link/${encodeURIComponent(decision.merchantId)}?next=${encodeURIComponent(decision.next)}`);
      case 'code': {
        // Single use: the request is spent by the response it produces.
        if (!(await deps.authorize.load(id, bid, { consume: true }))) throw new AppError('flow.expired');
        return ctx.redirect(await deps.authorize.respond(r, session as EndUserSession, decision.binding));
      }
      case 'choose': {
        const t = translator(text, ctx.state.locale);
        const preferred = decision.bindings.find((b) => b.isDefault)?.id ?? decision.bindings[0]?.id;
        return renderPage(ctx, deps.views, 'oauth/choose', {
          title: t('title'),
          t: { title: t('title'), lead: t('lead', { merchant: decision.merchantName }), default: t('default'), continue: t('continue'), cancel: t('cancel'), linkAnother: t('linkAnother') },
          csrf: deps.csrf.token(ctx),
          reqId: id,
          accounts: decision.bindings.map((b) => ({ id: b.id, display: b.accountDisplay ?? b.accountId, isDefault: b.isDefault, checked: b.id === preferred })),
          linkUrl: `/link/${encodeURIComponent(r.merchantId)}?next=${encodeURIComponent(continuePath(id))}`,
        });
      }
    }
  }

  /** Runs `fn`; a redirectable protocol error goes back to the verified redirect_uri. */
  async function answering(ctx: Context, target: { redirectUri: string; state?: string }, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (!isRedirectable(err)) throw err;
      ctx.state.log.info({ errorCode: err.error }, 'authorization request refused to the client');
      ctx.redirect(deps.authorize.errorUrl(target, err.error, err.description));
    }
  }

  router.get('/oauth2/authorize', shownToBrowsers, async (ctx) => {
    const form = parseForm(ctx.querystring);
    const target = await deps.authorize.verifyTarget(form);
    await answering(ctx, target, async () => {
      const bid = browserId(ctx, true) as string;
      const { id, request } = await deps.authorize.save(await deps.authorize.prepare(form, target), bid);
      await act(ctx, bid, id, request, await deps.sessions().read(ctx));
    });
  });

  /**
   * OIDC Core §3.1.2.1: the authorization endpoint MUST take POST (form serialization) as well
   * as GET. The form is answered with a 303 to the same request as a GET, which then runs
   * every check: a cross-site POST carries no SameSite=Lax cookie (the user's session, this
   * browser's id), so handling it here would log the user out of the journey and replace the
   * browser id of requests already under way; the GET that follows the redirect carries them.
   * The target is our own endpoint, never a URI from the request.
   */
  router.post('/oauth2/authorize', shownToBrowsers, async (ctx) => {
    if (ctx.request.type !== 'application/x-www-form-urlencoded')
      throw new InvalidRequest('send the authorization request as application/x-www-form-urlencoded', undefined, { redirect: false });
    const form = new URLSearchParams((await readRawBody(ctx, AUTHORIZE_FORM_LIMIT)).toString('utf8'));
    ctx.status = 303;
    ctx.redirect(`/oauth2/authorize?${form.toString()}`);
  });

  router.get('/oauth2/authorize/continue', shownToBrowsers, async (ctx) => {
    const id = typeof ctx.query.req === 'string' ? ctx.query.req : '';
    const bid = browserId(ctx, false);
    const r = id ? await deps.authorize.load(id, bid) : null;
    if (!r) throw new AppError('flow.expired', 'this sign-in has expired; start again from the app');
    await deps.authorize.recheckTarget(r);
    await answering(ctx, r, async () => act(ctx, bid, id, r, await deps.sessions().read(ctx)));
  });

  router.post('/oauth2/authorize/continue', shownToBrowsers, async (ctx) => {
    const body = parseInput(choiceSchema, await readBody(ctx, 4096), 'app');
    deps.csrf.verify(ctx, body._csrf);
    const r = await deps.authorize.load(body.req, browserId(ctx, false), { consume: true });
    if (!r) throw new AppError('flow.expired', 'this sign-in has expired; start again from the app');
    await deps.authorize.recheckTarget(r);
    await answering(ctx, r, async () => {
      if (body.action === 'cancel') {
        ctx.redirect(deps.authorize.errorUrl(r, 'access_denied', 'the user cancelled'));
        return;
      }
      const session = await deps.sessions().read(ctx);
      const binding = body.binding ? await deps.authorize.chosen(r, session, body.binding) : null;
      if (!binding || !session) throw new AppError('request.invalid', 'choose one of your linked accounts');
      ctx.redirect(await deps.authorize.respond(r, session, binding));
    });
  });

  return router;
}
