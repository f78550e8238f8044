/**
 * `GET /wechat/login` and `GET /wechat/oauth/callback` (DESIGN.md routes; wechat-protocol.md
 * §1; SECURITY.md A1 rows "CSRF", "Open redirectors", "Credential leakage"). The service does
 * the protocol; these handlers only read cookies and query strings, set the session cookie
 * and choose the page. A successful callback 302s at once, so the code leaves the address bar.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import QRCode from 'qrcode';
import { z } from 'zod';
import type { AppConfig, MerchantConfig } from '../config/index.ts';
import { AppError } from '../http/errors.ts';
import { parseInput } from '../http/validate.ts';
import type { Views } from '../http/views.ts';
import { loginHref, renderLink, renderOutcome, tr, type OutcomeModel } from './link-page.routes.ts';
import type { CallbackOutcome, FlowErrorReason, LoginFlowService } from './login-flow.service.ts';
import { safeNextPath } from './next-path.ts';
import type { WebSession } from './web-session.routes.ts';

export interface LoginRoutesDeps {
  config: Pick<AppConfig, 'publicUrl' | 'sandbox'>;
  views: Views;
  merchant: (id: string) => MerchantConfig | undefined;
  loginFlow: LoginFlowService;
  web: WebSession;
}

const one = z.string().max(2048);
const loginQuery = z
  .object({
    merchant: z.string().regex(/^[a-z0-9-]{1,40}$/),
    next: one.optional(),
    via: z.enum(['sandbox', 'website']).optional(),
    lang: one.optional(),
    // The authorization server asks for a new authentication (prompt=login, max_age).
    fresh: z.literal('1').optional(),
  })
  .strict();
const callbackQuery = z.object({ oa: one.optional(), app: one.optional(), code: one.optional(), state: one.optional(), lang: one.optional() }).strict();

const STATUS: Record<FlowErrorReason, number> = {
  declined: 200,
  snapshot: 200,
  expired: 400,
  cross_browser: 400,
  code_spent: 400,
  busy: 503,
  retry: 503,
  website_unlinked: 400,
};

/** WeChat's in-app browser says so in its user agent; nothing else can do web authorization. */
export const isWeChatBrowser = (ua: string): boolean => /MicroMessenger/i.test(ua);

export function createLoginRoutes(deps: LoginRoutesDeps): Router {
  const router = new Router();

  function outcomePage(ctx: Context, o: Extract<CallbackOutcome, { kind: 'error' }>): void {
    const t = tr(ctx);
    const again = o.retry ? [{ href: loginHref(o.retry.merchantId, o.retry.next), label: t('startAgain'), kind: 'primary' as const }] : [];
    const pages: Record<FlowErrorReason, OutcomeModel> = {
      declined: { icon: 'warn', heading: t('declinedTitle'), text: t('declinedBody'), actions: again },
      expired: { icon: 'warn', heading: t('expiredTitle'), text: t('expiredBody'), hint: t('close'), actions: [] },
      cross_browser: { icon: 'warn', heading: t('crossTitle'), text: t('crossBody'), actions: again },
      code_spent: { icon: 'warn', heading: t('spentTitle'), text: t('spentBody'), actions: again },
      snapshot: { icon: 'warn', heading: t('snapshotTitle'), text: t('snapshotBody'), hint: t('snapshotHint'), actions: again },
      busy: { icon: 'err', heading: t('busyTitle'), text: t('busyBody'), actions: again },
      retry: { icon: 'err', heading: t('retryTitle'), text: t('retryBody'), actions: again },
      website_unlinked: { icon: 'warn', heading: t('websiteTitle'), text: t('websiteBody'), actions: again },
    };
    if (o.reason === 'busy' || o.reason === 'retry') ctx.set('Retry-After', '1');
    renderOutcome(ctx, deps.views, pages[o.reason], STATUS[o.reason]);
  }

  router.get('/wechat/login', async (ctx) => {
    const q = parseInput(loginQuery, ctx.query);
    const m = deps.merchant(q.merchant);
    if (!m) throw new AppError('request.not_found');
    // A `next` that is not a same-origin path is refused, never repaired (RFC 9700 §4.11).
    if (q.next !== undefined && safeNextPath(q.next) === null) throw new AppError('request.invalid', 'next must be a path on this site');
    const next = q.next ?? `/link/${m.id}`;
    const account = deps.loginFlow.accountOf(m.id);
    const session = await deps.web.read(ctx);
    if (session && account && session.appId === account.appId && !q.fresh) return ctx.redirect(next);

    const browserId = deps.web.browserId(ctx, true);
    if (q.via === 'website' && account?.websiteApp) {
      const lang = ctx.state.locale === 'en' ? 'en' : 'cn';
      return ctx.redirect(await deps.loginFlow.start({ merchantId: m.id, next, browserId, website: true, lang }));
    }
    const inSandbox = deps.config.sandbox.enabled && q.via === 'sandbox';
    if (!isWeChatBrowser(ctx.get('user-agent')) && !inSandbox) {
      // Each way on keeps asking for a new authentication when this one does.
      const here = `${loginHref(m.id, q.next)}${q.fresh ? '&fresh=1' : ''}`;
      const self = `${deps.config.publicUrl}${here}`;
      const t = tr(ctx);
      return renderLink(ctx, deps.views, 'open-in-wechat', {
        title: t('openTitle'),
        t,
        merchant: m.name,
        link: self,
        qr: await QRCode.toDataURL(self, { margin: 1, width: 480, errorCorrectionLevel: 'M' }),
        sandboxHref: deps.config.sandbox.enabled ? `${here}&via=sandbox` : null,
        websiteHref: account?.websiteApp ? `${here}&via=website` : null,
      });
    }
    const location = await deps.loginFlow.start({ merchantId: m.id, next, browserId });
    ctx.redirect(location);
  });

  router.get('/wechat/oauth/callback', async (ctx) => {
    // Arrays (repeated parameters) fail the schema: one value each or nothing.
    const parsed = callbackQuery.safeParse(ctx.query);
    const q = parsed.success ? parsed.data : {};
    const outcome = await deps.loginFlow.callback({ oa: q.oa, app: q.app, code: q.code, state: q.state, browserId: deps.web.browserId(ctx) });
    if (outcome.kind === 'ok') {
      deps.web.set(ctx, outcome.sessionId);
      return ctx.redirect(outcome.next);
    }
    if (outcome.kind === 'continue') return ctx.redirect(outcome.location);
    outcomePage(ctx, outcome);
  });

  return router;
}
