/**
 * `oidc` pages: `GET /link/:merchant/oidc` sends the user to the merchant's identity
 * provider; `GET /link/:merchant/oidc/callback` comes back with the code. The PKCE verifier,
 * nonce and identity wait in the Kv under the state, consumed once (GETDEL), and the
 * callback must arrive in the same WeChat session that started it.
 */
import Router from '@koa/router';
import { z } from 'zod';
import type { AppConfig } from '../config/index.ts';
import { keyspace, ttl } from '../store/keyspace.ts';
import type { Kv } from '../store/kv.ts';
import { AppError } from '../http/errors.ts';
import { accountsHref, linkRoute, type LinkContextDeps } from './accounts.routes.ts';
import { renderOutcome, tr } from './link-page.routes.ts';
import type { OidcConnector } from './oidc.connector.ts';
import { parseStored } from '../store/rows.ts';
import { flashOf, merchantCall } from './verify.routes.ts';

const recordSchema = z.object({ identityId: z.string(), nonce: z.string(), verifier: z.string(), next: z.string().nullable() });

export interface OidcRoutesDeps extends LinkContextDeps {
  config: Pick<AppConfig, 'publicUrl'>;
  kv: Kv;
  oidc: OidcConnector;
}

export function createOidcRoutes(deps: OidcRoutesDeps): Router {
  const router = new Router();
  const redirectUri = (merchantId: string) => `${deps.config.publicUrl}/link/${encodeURIComponent(merchantId)}/oidc/callback`;

  function methodOf(merchantId: string) {
    const method = deps.merchant(merchantId)?.linking.find((l) => l.type === 'oidc');
    if (!method || method.type !== 'oidc') throw new AppError('linking.not_found');
    return method;
  }

  router.get('/link/:merchant/oidc', linkRoute(deps, async (ctx, c) => {
    const method = methodOf(c.m.id);
    const started = await merchantCall(ctx, deps, c.m.name, accountsHref(c.m.id, undefined, c.next), () => deps.oidc.begin(method, redirectUri(c.m.id)));
    if (!started) return;
    const record = { identityId: c.session.identityId, nonce: started.nonce, verifier: started.verifier, next: c.next };
    await deps.kv.set(keyspace.linking.oidcState(c.m.id, started.state), JSON.stringify(record), ttl.proof);
    ctx.redirect(started.url);
  }));

  router.get('/link/:merchant/oidc/callback', linkRoute(deps, async (ctx, c) => {
    const method = methodOf(c.m.id);
    const t = tr(ctx);
    const state = typeof ctx.query.state === 'string' && ctx.query.state.length <= 256 ? ctx.query.state : '';
    const record = state ? parseStored(recordSchema, await deps.kv.getDel(keyspace.linking.oidcState(c.m.id, state))) : null;
    const failed = async (reason: string, status: number) => {
      await deps.bindings.audit({ actor: `user:${c.session.identityId}`, action: 'proof.failed', merchantId: c.m.id, identityId: c.session.identityId, source: 'web', detail: { proof: 'oidc', reason } });
      renderOutcome(
        ctx,
        deps.views,
        { icon: 'warn', heading: t('via_oidc', { merchant: c.m.name }), text: t('oidcFailed', { merchant: c.m.name }), actions: [{ href: accountsHref(c.m.id, undefined, record?.next), label: t('back'), kind: 'secondary' }] },
        status,
      );
    };
    // Unknown, used or expired state, or another WeChat user's: refuse (RFC 9700 §4.7).
    if (!record || record.identityId !== c.session.identityId) return failed('state', 400);
    const back = accountsHref(c.m.id, undefined, record.next);
    const result = await merchantCall(ctx, deps, c.m.name, back, () =>
      deps.oidc.finish(method, new URL(`${deps.config.publicUrl}${ctx.originalUrl}`), { state, nonce: record.nonce, verifier: record.verifier }),
    );
    if (!result) return;
    if (!result.ok) return failed(result.reason, result.reason === 'cancelled' ? 200 : 400);
    const linked = await deps.bindings.link({
      merchantId: c.m.id,
      identityId: c.session.identityId,
      account: { id: result.accountId, display: result.display },
      proof: 'oidc',
      actor: `user:${c.session.identityId}`,
      source: 'web',
    });
    ctx.status = 303;
    ctx.redirect(accountsHref(c.m.id, flashOf(linked), record.next));
  }));

  return router;
}
