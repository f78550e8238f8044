/** `GET /cgi-bin/token` and `POST /cgi-bin/stable_token` (wechat-protocol.md §2). */
import Router from '@koa/router';
import type { SandboxDeps } from './deps.ts';
import { readJsonBody } from './body.ts';
import { issueClassicToken, issueStableToken, type StableBody } from './tokens.service.ts';
import { callMeta, wxData, wxError, wxFailToResponse } from './wx-response.ts';

const q = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function createTokenRoutes(deps: SandboxDeps): Router {
  const router = new Router();
  router.use(wxFailToResponse);

  router.get('/cgi-bin/token', (ctx) => {
    callMeta(ctx).appId = q(ctx.query.appid);
    const issued = issueClassicToken(
      deps.state,
      { grant_type: q(ctx.query.grant_type), appid: q(ctx.query.appid), secret: q(ctx.query.secret) },
      ctx.ip,
      deps.now(),
    );
    wxData(ctx, { ...issued });
  });

  router.get('/cgi-bin/stable_token', (ctx) => wxError(ctx, 43002));

  router.post('/cgi-bin/stable_token', async (ctx) => {
    const body = await readJsonBody(ctx);
    if (!body.ok) return wxError(ctx, body.empty ? 44002 : 47001);
    if (typeof body.value !== 'object' || body.value === null) return wxError(ctx, 47001);
    const b = body.value as StableBody;
    callMeta(ctx).appId = q(b.appid);
    wxData(ctx, { ...issueStableToken(deps.state, b, ctx.ip, deps.now()) });
  });

  return router;
}
