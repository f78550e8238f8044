/**
 * Search (openid, unionid, merchant account id, binding id, pairwise sub) and an
 * identity's page: its bindings, subscribe state, last location, tags and a paged timeline
 * (timeline.ts) of logins, links, unlinks, messages (metadata only) and notices.
 */
import type Router from '@koa/router';
import { z } from 'zod';
import { AppError } from '../http/errors.ts';
import { parseInput } from '../http/validate.ts';
import { bindingsOfIdentity, listBindings } from './bindings.queries.ts';
import { auth, principal, renderAdmin } from './guard.routes.ts';
import { findIdentityForScope, searchIdentities, subjectsOf } from './identity.queries.ts';
import { assertMerchant, can, scopeOf } from './policy.ts';
import { loadTimeline } from './timeline.ts';
import type { AdminWeb } from './web.ts';

const searchQuery = z.object({ q: z.string().max(200).optional() }).strict();
/** `before`: the timeline's cursor, an instant as the page wrote it. */
const identityQuery = z.object({ before: z.iso.datetime().optional() }).strict();
const TIMELINE_PAGE = 50;

export function identityRoutes(r: Router, web: AdminWeb): void {
  r.get('/search', auth(web, 'view'), async (ctx) => {
    const { q = '' } = parseInput(searchQuery, ctx.query);
    const scope = scopeOf(principal(ctx));
    const term = q.trim();
    const [identities, bindings] = term
      ? await Promise.all([searchIdentities(web.db, scope, term), listBindings(web.db, scope, { q: term, limit: 50 })])
      : [[], []];
    renderAdmin(ctx, web, 'search', { title: 'Search', q: term, identities, bindings, searched: term !== '' });
  });

  r.get('/identities/:id', auth(web, 'view'), async (ctx) => {
    const scope = scopeOf(principal(ctx));
    const { row, exists } = await findIdentityForScope(web.db, scope, ctx.params.id ?? '');
    if (!row) {
      if (!exists) throw new AppError('request.not_found');
      // Exists, but only at other merchants: the same refusal as another merchant's binding.
      assertMerchant(principal(ctx), null);
      throw new AppError('request.not_found');
    }
    const { before } = parseInput(identityQuery, ctx.query);
    const account = web.config.officialAccounts.find((a) => a.appId === row.app_id);
    const accountIsOwn = !!account && web.config.merchants.filter((m) => m.officialAccount === account.id).every((m) => m.id === scope.merchantId);
    const [bindings, subjects, timeline] = await Promise.all([
      bindingsOfIdentity(web.db, scope, row.id),
      subjectsOf(web.db, scope, row.id),
      loadTimeline(web.db, { identity: row, scope, accountIsOwn, before: before ? new Date(before) : new Date(web.now() + 60_000), limit: TIMELINE_PAGE }),
    ]);
    renderAdmin(ctx, web, 'identity', {
      title: row.nickname ?? `WeChat user ${row.openid.slice(0, 10)}…`,
      i: row,
      officialAccount: account?.id ?? row.app_id,
      bindings,
      subjects,
      timeline: timeline.events,
      older: timeline.next ? `/admin/identities/${row.id}?before=${encodeURIComponent(timeline.next.toISOString())}#timeline` : null,
      paged: !!before,
      canLink: can(principal(ctx), 'bindings.write'),
    });
  });
}
