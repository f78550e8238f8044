/**
 * `GET, POST /wechat/push/:account` (DESIGN.md routes; wechat-protocol.md §5.2, §5.3): the
 * only place the inbox touches Koa. The raw body is read under a cap (413 beyond it) and
 * handed, unparsed, to the push service, which verifies before it parses.
 */
import Router from '@koa/router';
import type { OfficialAccountConfig } from '../config/index.ts';
import { readRawBody } from '../http/body.ts';
import { AppError } from '../http/errors.ts';
import type { PushService } from './push.service.ts';

export function createPushRoutes(o: { accounts: readonly OfficialAccountConfig[]; push: PushService; maxBodyBytes: number }): Router {
  const byId = new Map(o.accounts.map((a) => [a.id, a]));
  const router = new Router();

  const accountOf = (id: string | undefined): OfficialAccountConfig => {
    const a = id === undefined ? undefined : byId.get(id);
    if (!a) throw new AppError('request.not_found');
    return a;
  };

  router.get('/wechat/push/:account', (ctx) => {
    const account = accountOf(ctx.params.account);
    ctx.type = 'text/plain';
    ctx.body = o.push.verifyUrl(account, ctx.query);
  });

  router.post('/wechat/push/:account', async (ctx) => {
    const account = accountOf(ctx.params.account);
    const raw = await readRawBody(ctx, o.maxBodyBytes);
    const res = await o.push.receive(account, ctx.query, raw);
    ctx.type = res.type;
    ctx.body = res.body;
  });

  return router;
}
