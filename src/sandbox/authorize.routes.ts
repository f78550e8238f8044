/**
 * The authorize page of open.weixin.qq.com (wechat-protocol.md §1.2–§1.4), for a person at
 * a desktop browser: it checks the link like WeChat does, then lets the person pick (or
 * create) the simulated WeChat user they are. `snsapi_userinfo` asks for consent
 * (允许/拒绝); `snsapi_base` is silent in WeChat, so here it only asks "who are you".
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { SandboxDeps } from './deps.ts';
import { readFormBody } from './body.ts';
import { createUser, relationOf } from './directory.ts';
import type { PageKit } from './page-kit.ts';
import { checkAuthorize, completeAuthorize, type AuthorizeRequest } from './web-auth.service.ts';

const LAST_USER_COOKIE = 'sbx_uid';

export interface AuthorizeView {
  appName: string;
  appId: string;
  scope: string;
  consent: boolean;
  params: Array<[string, string]>;
  users: Array<{ userId: string; nickname: string; avatarUrl: string; initial: string; following: boolean; snapshot: boolean; hasUnionId: boolean; checked: boolean }>;
  doubleRedirect: boolean;
  csrf: string;
  action: string;
}

export function createAuthorizeRoutes(deps: SandboxDeps, kit: PageKit): Router {
  const router = new Router();
  const { state } = deps;

  function renderError(ctx: Context, error: { code?: number; message: string; detail: string }): void {
    kit.render(ctx, 'error', { title: '授权失败 / Authorization failed', code: error.code, message: error.message, detail: error.detail });
  }

  function view(ctx: Context, req: AuthorizeRequest): AuthorizeView {
    const last = ctx.cookies.get(LAST_USER_COOKIE);
    const users = [...state.users.values()];
    const preselected = users.some((u) => u.userId === last) ? last : users[0]?.userId;
    return {
      appName: req.app.name,
      appId: req.app.appId,
      scope: req.scope,
      consent: req.scope === 'snsapi_userinfo',
      params: [
        ['appid', req.app.appId],
        ['redirect_uri', req.redirectUri],
        ['response_type', 'code'],
        ['scope', req.scope],
        ['state', req.state],
        ...(req.forcePopup ? ([['forcePopup', 'true']] as Array<[string, string]>) : []),
      ],
      users: users.map((u) => ({
        userId: u.userId,
        nickname: u.nickname,
        avatarUrl: u.avatarUrl,
        initial: [...u.nickname][0] ?? '?',
        following: relationOf(state, req.app.appId, u.userId, deps.salt).following,
        snapshot: u.snapshot,
        hasUnionId: u.hasUnionId,
        checked: u.userId === preselected,
      })),
      doubleRedirect: req.app.doubleRedirect,
      csrf: kit.csrfToken(ctx),
      action: kit.url('/connect/oauth2/authorize/confirm'),
    };
  }

  router.get('/connect/oauth2/authorize', (ctx) => {
    const check = checkAuthorize(state, [...new URLSearchParams(ctx.querystring)]);
    if (!check.ok) return renderError(ctx, check.error);
    kit.render(ctx, 'authorize', view(ctx, check.request));
  });

  router.post('/connect/oauth2/authorize/confirm', async (ctx) => {
    const form = await readFormBody(ctx);
    kit.checkCsrf(ctx, form);
    const ordered = ['appid', 'redirect_uri', 'response_type', 'scope', 'state', 'forcePopup'];
    const pairs = ordered.filter((k) => form[k] !== undefined).map((k): [string, string] => [k, form[k] ?? '']);
    const check = checkAuthorize(state, pairs);
    if (!check.ok) return renderError(ctx, check.error);

    let userId = form.user ?? '';
    if (userId === '__new') {
      const user = createUser(
        state,
        {
          nickname: form.new_nickname,
          avatarUrl: form.new_avatar?.trim() || undefined,
          hasUnionId: form.new_unionid === 'on',
          snapshot: form.new_snapshot === 'on',
          followsApps: form.new_follows === 'on' ? [check.request.app.appId] : [],
        },
        deps.salt,
        deps.now(),
      );
      userId = user.userId;
    }
    const outcome = completeAuthorize(
      state,
      check.request,
      { userId, allow: form.decision !== 'decline', doubleRedirect: form.double_redirect === 'on' },
      deps.salt,
      deps.now(),
    );
    ctx.cookies.set(LAST_USER_COOKIE, userId, { httpOnly: true, sameSite: 'lax', path: kit.url('/') || '/', overwrite: true });
    const [location] = outcome.redirects;
    if (!location) return renderError(ctx, { message: 'no redirect', detail: '' });
    if (outcome.redirects.length > 1) {
      // The intermediate page requests the callback once in the background, then navigates
      // to it: two hits with the same code, the browser keeping the second (§1.4 [OBS]).
      return kit.render(ctx, 'double-redirect', { location });
    }
    ctx.redirect(location);
  });

  return router;
}
