/** The sns/* JSON endpoints of web authorization (wechat-protocol.md §1.5–§1.9). */
import Router from '@koa/router';
import type { SandboxDeps } from './deps.ts';
import { checkUserToken, exchangeCode, refreshUserToken, userInfo } from './web-auth.service.ts';
import { callMeta, wxData, wxFailToResponse, wxOk } from './wx-response.ts';

const q = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function createWebAuthApiRoutes(deps: SandboxDeps): Router {
  const router = new Router();
  router.use(wxFailToResponse);

  router.get('/sns/oauth2/access_token', (ctx) => {
    const appid = q(ctx.query.appid);
    callMeta(ctx).appId = appid;
    const body = exchangeCode(
      deps.state,
      { appid, secret: q(ctx.query.secret), code: q(ctx.query.code), grant_type: q(ctx.query.grant_type) },
      deps.salt,
      deps.now(),
    );
    wxData(ctx, body);
  });

  router.get('/sns/oauth2/refresh_token', (ctx) => {
    const appid = q(ctx.query.appid);
    callMeta(ctx).appId = appid;
    const body = refreshUserToken(
      deps.state,
      { appid, grant_type: q(ctx.query.grant_type), refresh_token: q(ctx.query.refresh_token) },
      deps.now(),
    );
    wxData(ctx, body);
  });

  router.get('/sns/userinfo', (ctx) => {
    const token = checkUserToken(deps.state, q(ctx.query.access_token), q(ctx.query.openid), deps.now());
    callMeta(ctx).appId = token.appId;
    wxData(ctx, userInfo(deps.state, token));
  });

  router.get('/sns/auth', (ctx) => {
    const token = checkUserToken(deps.state, q(ctx.query.access_token), q(ctx.query.openid), deps.now());
    callMeta(ctx).appId = token.appId;
    wxOk(ctx);
  });

  return router;
}
