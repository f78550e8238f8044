/**
 * `verify-api` pages: `GET /link/:merchant/verify` asks the merchant what to ask, renders
 * the fields it returns (escaped, never trusted), `POST` sends the answers on. The service
 * holds the protocol; these handlers only map its steps to pages.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { readBody } from '../http/body.ts';
import { AppError, DependencyUnavailableError } from '../http/errors.ts';
import { accountsHref, linkRoute, type Flash, type LinkContextDeps } from './accounts.routes.ts';
import { renderLink, renderOutcome, tr } from './link-page.routes.ts';
import type { LinkResult } from './types.ts';
import type { VerifyApiService, VerifyStep } from './verify-api.service.ts';

export function flashOf(r: LinkResult): Flash {
  if (r.ok) return r.created ? 'linked' : 'already';
  return r.reason === 'conflict' ? 'conflict' : 'limit';
}

const INPUT_MODE: Record<string, string> = { tel: 'numeric', number: 'numeric', text: 'text', password: 'text' };

/** Merchant trouble is its own page; our own Kv/Db trouble is the generic retry (fail closed). */
export async function merchantCall<T>(ctx: Context, deps: LinkContextDeps, merchantName: string, back: string, fn: () => Promise<T>): Promise<T | null> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof DependencyUnavailableError)) throw err;
    const t = tr(ctx);
    ctx.state.log?.warn({ dependency: err.dependency, err: err.cause }, 'proof step could not complete');
    ctx.set('Retry-After', '1');
    const merchant = err.dependency === 'merchant';
    renderOutcome(
      ctx,
      deps.views,
      {
        icon: 'err',
        heading: merchant ? t('verifyTitle') : t('retryTitle'),
        text: merchant ? t('merchantUnavailable', { merchant: merchantName }) : t('retryBody'),
        actions: [{ href: back, label: t('back'), kind: 'secondary' }],
      },
      503,
    );
    return null;
  }
}

export function createVerifyRoutes(deps: LinkContextDeps & { verify: VerifyApiService }): Router {
  const router = new Router();

  function show(ctx: Context, merchant: { id: string; name: string }, step: VerifyStep): void {
    const t = tr(ctx);
    const back = accountsHref(merchant.id, undefined, 'next' in step ? step.next : null);
    const again = `/link/${encodeURIComponent(merchant.id)}/verify${'next' in step && step.next ? `?next=${encodeURIComponent(step.next)}` : ''}`;
    switch (step.kind) {
      case 'done':
        ctx.status = 303;
        return ctx.redirect(accountsHref(merchant.id, flashOf(step.result), step.next));
      case 'fields':
        return renderLink(ctx, deps.views, 'verify', {
          title: t('verifyTitle'),
          t,
          merchant,
          lead: t('verifyLead', { merchant: merchant.name }),
          message: step.message ?? null,
          fields: step.fields.map((f) => ({ ...f, inputmode: INPUT_MODE[f.type] ?? 'text', autocomplete: f.type === 'password' ? 'off' : 'one-time-code' })),
          proofId: step.proofId,
          action: `/link/${encodeURIComponent(merchant.id)}/verify`,
          backHref: back,
          csrf: deps.csrf.token(ctx),
        });
      case 'rejected':
        return renderOutcome(
          ctx,
          deps.views,
          {
            icon: 'err',
            heading: t('verifyTitle'),
            text: t('verifyRejected', { message: step.message || '—' }),
            actions: [
              { href: again, label: t('retry'), kind: 'primary' },
              { href: back, label: t('back'), kind: 'secondary' },
            ],
          },
          400,
        );
      case 'too_many':
        return renderOutcome(ctx, deps.views, { icon: 'err', heading: t('verifyTitle'), text: t('verifyTooMany'), actions: [{ href: back, label: t('back'), kind: 'secondary' }] }, 429);
      case 'expired':
        return renderOutcome(ctx, deps.views, { icon: 'warn', heading: t('verifyTitle'), text: t('verifyExpired'), actions: [{ href: again, label: t('startAgain'), kind: 'primary' }] }, 400);
    }
  }

  router.get('/link/:merchant/verify', linkRoute(deps, async (ctx, c) => {
    const back = accountsHref(c.m.id, undefined, c.next);
    const step = await merchantCall(ctx, deps, c.m.name, back, () => deps.verify.begin({ merchantId: c.m.id, identityId: c.session.identityId, next: c.next }));
    if (step) show(ctx, { id: c.m.id, name: c.m.name }, step);
  }));

  router.post('/link/:merchant/verify', linkRoute(deps, async (ctx, c) => {
    const form = (await readBody(ctx, 8 * 1024)) as Record<string, unknown>;
    deps.csrf.verify(ctx, form._csrf);
    if (typeof form.proof !== 'string') throw new AppError('request.invalid', 'proof is missing');
    const proofId = form.proof;
    const step = await merchantCall(ctx, deps, c.m.name, accountsHref(c.m.id), () =>
      deps.verify.submit({ merchantId: c.m.id, identityId: c.session.identityId, proofId, values: form }),
    );
    if (step) show(ctx, { id: c.m.id, name: c.m.name }, step);
  }));

  return router;
}
