/**
 * `binding-code` pages: the merchant's link `/link/:merchant/code?c=CODE` shows a
 * confirmation (POST, CSRF-protected: opening a link never links by itself), and the same
 * path without `c` is a form to type a code. Redemption is the service's, single-use.
 */
import Router from '@koa/router';
import { z } from 'zod';
import { readBody } from '../http/body.ts';
import { parseInput } from '../http/validate.ts';
import { accountsHref, linkRoute, type LinkContextDeps } from './accounts.routes.ts';
import type { BindingCodesService } from './binding-codes.service.ts';
import { isCodeShaped, normalizeCode } from './binding-codes.service.ts';
import { renderLink, renderOutcome, tr } from './link-page.routes.ts';
import { safeNextPath } from './next-path.ts';
import { flashOf, merchantCall } from './verify.routes.ts';

const formSchema = z.object({ _csrf: z.string(), code: z.string().max(64), next: z.string().max(1024).optional() }).strict();

export function createCodeRoutes(deps: LinkContextDeps & { codes: BindingCodesService }): Router {
  const router = new Router();

  router.get('/link/:merchant/code', linkRoute(deps, async (ctx, c) => {
    const t = tr(ctx);
    const raw = typeof ctx.query.c === 'string' ? normalizeCode(ctx.query.c) : '';
    // Only a live code of this merchant is carried into the form, with what it links; anything else starts empty.
    const peek = isCodeShaped(raw) ? await deps.codes.peekBindingCode({ code: raw, merchantId: c.m.id, identityId: c.session.identityId }) : null;
    renderLink(ctx, deps.views, 'code', {
      title: t('codeTitle'),
      t,
      merchant: { id: c.m.id, name: c.m.name },
      code: peek ? raw : '',
      account: peek?.accountDisplay ?? null,
      action: `/link/${encodeURIComponent(c.m.id)}/code`,
      backHref: accountsHref(c.m.id, undefined, c.next),
      next: c.next,
      csrf: deps.csrf.token(ctx),
    });
  }));

  router.post('/link/:merchant/code', linkRoute(deps, async (ctx, c) => {
    const form = parseInput(formSchema, await readBody(ctx, 8 * 1024));
    deps.csrf.verify(ctx, form._csrf);
    const next = form.next ? safeNextPath(form.next) : null;
    const back = accountsHref(c.m.id, undefined, next);
    const result = await merchantCall(ctx, deps, c.m.name, back, () =>
      deps.codes.redeemBindingCode({ by: { code: form.code }, identityId: c.session.identityId, merchantId: c.m.id, actor: `user:${c.session.identityId}`, source: 'web' }),
    );
    if (!result) return;
    const reason = result.ok ? null : result.reason;
    if (result.ok || reason === 'conflict' || reason === 'limit_reached') {
      ctx.status = 303;
      const flash = result.ok ? flashOf(result) : reason === 'conflict' ? 'conflict' : 'limit';
      return ctx.redirect(accountsHref(c.m.id, flash, next));
    }
    const t = tr(ctx);
    const again = `/link/${encodeURIComponent(c.m.id)}/code${next ? `?next=${encodeURIComponent(next)}` : ''}`;
    renderOutcome(
      ctx,
      deps.views,
      {
        icon: 'err',
        heading: t('codeTitle'),
        text: reason === 'too_many' ? t('verifyTooMany') : t('codeInvalid'),
        actions: [
          { href: again, label: t('retry'), kind: 'primary' },
          { href: back, label: t('back'), kind: 'secondary' },
        ],
      },
      reason === 'too_many' ? 429 : 400,
    );
  }));

  return router;
}
