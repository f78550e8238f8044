/** `cgi-bin/message/*` (wechat-protocol.md §3, §4). */
import Router from '@koa/router';
import type { SandboxDeps } from './deps.ts';
import { accountOf, jsonObjectOf } from './api-guard.ts';
import type { Interactions } from './interactions.ts';
import { sendCustom, sendSubscribe, sendTemplate, typing } from './messages.service.ts';
import { wxError, wxFailToResponse, wxOk, wxRawJson } from './wx-response.ts';

export function createMessageRoutes(deps: SandboxDeps, interactions: Interactions): Router {
  const router = new Router();
  router.use(wxFailToResponse);

  const postOnly = ['/cgi-bin/message/custom/send', '/cgi-bin/message/custom/typing', '/cgi-bin/message/template/send', '/cgi-bin/message/subscribe/bizsend'];
  for (const path of postOnly) router.get(path, (ctx) => wxError(ctx, 43002));

  router.post('/cgi-bin/message/custom/send', async (ctx) => {
    const app = accountOf(deps, ctx);
    sendCustom(deps, app, await jsonObjectOf(ctx));
    wxOk(ctx);
  });

  router.post('/cgi-bin/message/custom/typing', async (ctx) => {
    const app = accountOf(deps, ctx);
    typing(deps, app, await jsonObjectOf(ctx));
    wxOk(ctx);
  });

  router.post('/cgi-bin/message/template/send', async (ctx) => {
    const app = accountOf(deps, ctx);
    const sent = sendTemplate(deps, app, await jsonObjectOf(ctx));
    if (sent.fresh) {
      deps.scheduler.later(deps.state.limits.templateFinishDelayMs, () =>
        interactions.templateFinished(app.appId, sent.rel.userId, sent.msgid, sent.status),
      );
    }
    // §4.1: msgid is an int64 beyond 2^53, written as a bare JSON number — JSON.stringify
    // cannot, so the body is assembled by hand (msgid is digits only).
    wxRawJson(ctx, `{"errcode":0,"errmsg":"ok","msgid":${sent.msgid}}`);
  });

  router.post('/cgi-bin/message/subscribe/bizsend', async (ctx) => {
    const app = accountOf(deps, ctx);
    sendSubscribe(deps, app, await jsonObjectOf(ctx));
    wxOk(ctx);
  });

  return router;
}
