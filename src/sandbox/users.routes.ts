/** `cgi-bin/user/*`, `cgi-bin/qrcode/create` and `cgi-bin/showqrcode` (wechat-protocol.md §7, §5.5). */
import Router from '@koa/router';
import QRCode from 'qrcode';
import type { SandboxDeps } from './deps.ts';
import { accountOf, jsonObjectOf } from './api-guard.ts';
import { batchGet, createQr, followers, userInfo } from './users.service.ts';
import { callMeta, wxData, wxError, wxFailToResponse } from './wx-response.ts';

const q = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function createUserRoutes(deps: SandboxDeps): Router {
  const router = new Router();
  router.use(wxFailToResponse);

  router.get('/cgi-bin/user/info', (ctx) => {
    const app = accountOf(deps, ctx);
    wxData(ctx, userInfo(deps, app, q(ctx.query.openid)));
  });

  router.get('/cgi-bin/user/info/batchget', (ctx) => wxError(ctx, 43002));
  router.post('/cgi-bin/user/info/batchget', async (ctx) => {
    const app = accountOf(deps, ctx);
    wxData(ctx, batchGet(deps, app, await jsonObjectOf(ctx)));
  });

  router.get('/cgi-bin/user/get', (ctx) => {
    const app = accountOf(deps, ctx);
    wxData(ctx, followers(deps, app, q(ctx.query.next_openid)));
  });

  router.get('/cgi-bin/qrcode/create', (ctx) => wxError(ctx, 43002));
  router.post('/cgi-bin/qrcode/create', async (ctx) => {
    const app = accountOf(deps, ctx);
    const t = createQr(deps, app, await jsonObjectOf(ctx));
    const expire = t.expiresAt !== undefined ? { expire_seconds: Math.round((t.expiresAt - t.createdAt) / 1000) } : {};
    wxData(ctx, { ticket: t.ticket, ...expire, url: t.url });
  });

  // Real WeChat serves this from mp.weixin.qq.com; an unknown or expired ticket gets no image.
  router.get('/cgi-bin/showqrcode', async (ctx) => {
    const t = deps.state.qrTickets.get(q(ctx.query.ticket) ?? '');
    callMeta(ctx).appId = t?.appId;
    if (!t || (t.expiresAt !== undefined && deps.now() >= t.expiresAt)) {
      callMeta(ctx).errcode = 40001;
      ctx.status = 404;
      ctx.body = 'not found';
      return;
    }
    ctx.type = 'image/png';
    ctx.set('Cache-Control', 'public, max-age=60');
    ctx.body = await QRCode.toBuffer(t.url, { type: 'png', margin: 2, width: 258 });
  });

  return router;
}
