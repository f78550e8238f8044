/**
 * `PUT /api/v1/identities/:sub/tags` and `GET` of the same (merchant API, scope
 * `tags:write`): a merchant replaces the tags it keeps on one of its users, named by the
 * pairwise `sub` it knows them by. Authentication is the oauth feature's merchant-auth
 * middleware (`oauth.merchantAuth.require(scope)`), which leaves `ctx.state.merchantAuth`;
 * without it the route is not mounted.
 */
import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import { readBody } from '../http/body.ts';
import { AppError } from '../http/errors.ts';
import { parseInput } from '../http/validate.ts';
import type { Db } from '../store/db.ts';
import type { InboxLinking } from './answers.service.ts';
import { getIdentityTags, setIdentityTags, tagListSchema } from './tags.service.ts';

export type RequireScope = (scope: string) => Middleware;

const bodySchema = z.object({ tags: tagListSchema }).strict();
const subSchema = z.string().min(1).max(128);
const merchantIdSchema = z.string().min(1);

export function createTagRoutes(o: { db: Db; linking: Pick<InboxLinking, 'findBySubject'>; requireScope: RequireScope }): Router {
  const router = new Router();

  async function identityOf(merchantId: string, rawSub: unknown): Promise<string> {
    const sub = parseInput(subSchema, rawSub, 'app', 'sub');
    const found = await o.linking.findBySubject(merchantId, sub);
    if (!found) throw new AppError('linking.not_found', 'no such subject');
    return found.identityId;
  }

  function merchantOf(state: { merchantAuth?: { merchantId?: unknown } }): string {
    const r = merchantIdSchema.safeParse(state.merchantAuth?.merchantId);
    // The auth middleware ran but named no merchant: refuse rather than guess.
    if (!r.success) throw new AppError('request.unauthenticated');
    return r.data;
  }

  router.put('/api/v1/identities/:sub/tags', o.requireScope('tags:write'), async (ctx) => {
    const merchantId = merchantOf(ctx.state);
    const identityId = await identityOf(merchantId, ctx.params.sub);
    const body = parseInput(bodySchema, await readBody(ctx, 8 * 1024));
    const tags = await setIdentityTags(o.db, { identityId, merchantId, tags: body.tags });
    if (!tags) throw new AppError('linking.not_found', 'no such subject');
    ctx.body = { sub: ctx.params.sub, tags };
  });

  router.get('/api/v1/identities/:sub/tags', o.requireScope('tags:write'), async (ctx) => {
    const merchantId = merchantOf(ctx.state);
    const identityId = await identityOf(merchantId, ctx.params.sub);
    const tags = await getIdentityTags(o.db, { identityId, merchantId });
    if (!tags) throw new AppError('linking.not_found', 'no such subject');
    ctx.body = { sub: ctx.params.sub, tags };
  });

  return router;
}
