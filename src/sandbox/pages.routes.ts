/**
 * Demo pages: the list of simulated people and accounts, and a "phone" per person showing
 * their chat with each official account, with a composer (text, voice, menu, location,
 * follow/unfollow, scan a QR code). This is where a newcomer sees a notice arrive.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { AppError } from '../http/errors.ts';
import type { SandboxDeps } from './deps.ts';
import { readFormBody } from './body.ts';
import { relationOf, requireUser } from './directory.ts';
import type { UserAction } from './interactions.ts';
import type { PageKit } from './page-kit.ts';
import { chatFor, chatVersion } from './phone-model.ts';
import type { SandboxControl } from './sandbox.types.ts';

const DEFAULT_LOCATION = { latitude: 39.908823, longitude: 116.39747, label: '北京市东城区天安门广场 Tiananmen Square' };

function actionFromForm(form: Record<string, string>): UserAction {
  switch (form.type) {
    case 'text':
      return { type: 'text', content: form.content ?? '' };
    case 'voice':
      return { type: 'voice', recognition: form.recognition ?? '' };
    case 'click':
      return { type: 'click', key: form.key ?? '' };
    case 'view':
      return { type: 'view', url: form.url ?? '' };
    case 'location':
      return { type: 'location', ...DEFAULT_LOCATION };
    case 'follow':
      return { type: 'follow' };
    case 'unfollow':
      return { type: 'unfollow' };
    case 'scan':
      return { type: 'scan', ticket: form.ticket ?? '' };
    default:
      throw new AppError('request.invalid', 'unknown action');
  }
}

export function createPageRoutes(deps: SandboxDeps, sb: SandboxControl, kit: PageKit): Router {
  const router = new Router();
  const { state } = deps;

  router.get('/static/:file', async (ctx, next) => {
    if (!(await kit.serveStatic(ctx, ctx.params.file ?? ''))) return next();
  });

  router.get('/', (ctx) => {
    const apps = [...state.apps.values()];
    kit.render(ctx, 'index', {
      csrf: kit.csrfToken(ctx),
      apps: apps.map((a) => ({
        appId: a.appId,
        name: a.name,
        mode: a.mode,
        pushUrl: a.pushUrl ?? '',
        followers: [...state.relations.values()].filter((r) => r.appId === a.appId && r.following).length,
      })),
      users: [...state.users.values()].map((u) => ({
        userId: u.userId,
        nickname: u.nickname,
        avatarUrl: u.avatarUrl,
        initial: [...u.nickname][0] ?? '?',
        snapshot: u.snapshot,
        follows: apps.filter((a) => relationOf(state, a.appId, u.userId, deps.salt).following).map((a) => a.name),
      })),
    });
  });

  router.post('/users', async (ctx) => {
    const form = await readFormBody(ctx);
    kit.checkCsrf(ctx, form);
    const user = sb.createUser({
      nickname: form.nickname,
      avatarUrl: form.avatar?.trim() || undefined,
      hasUnionId: form.unionid === 'on',
      snapshot: form.snapshot === 'on',
      followsApps: form.follows === 'on' ? [...state.apps.keys()] : [],
    });
    ctx.status = 303;
    ctx.redirect(kit.url(`/phone/${encodeURIComponent(user.userId)}`));
  });

  function pickApp(ctx: Context): string {
    const wanted = typeof ctx.query.app === 'string' ? ctx.query.app : '';
    const first = state.apps.keys().next().value;
    const appId = state.apps.has(wanted) ? wanted : first;
    if (appId === undefined) throw new AppError('request.not_found', 'register an official account first');
    return appId;
  }

  router.get('/phone/:userId', (ctx) => {
    const user = requireUser(state, ctx.params.userId ?? '');
    const appId = pickApp(ctx);
    const app = state.apps.get(appId);
    if (!app) throw new AppError('request.not_found');
    const rel = relationOf(state, appId, user.userId, deps.salt);
    const now = deps.now();
    const tickets = [...state.qrTickets.values()].filter((t) => t.appId === appId && (t.expiresAt === undefined || now < t.expiresAt));
    const description = sb.describeUser(user.userId).accounts.find((a) => a.appId === appId);
    kit.render(ctx, 'phone', {
      csrf: kit.csrfToken(ctx),
      user: { ...user, initial: [...user.nickname][0] ?? '?' },
      tabs: [...state.apps.values()].map((a) => ({ appId: a.appId, name: a.name, active: a.appId === appId })),
      app: { appId, name: app.name, menu: app.menu },
      following: rel.following,
      messagesOff: rel.messagesOff,
      openid: rel.openid,
      window: description?.window ?? {},
      chat: chatFor(state, appId, user.userId),
      tickets: tickets.map((t) => ({ ticket: t.ticket, scene: String(t.sceneId ?? t.sceneStr ?? ''), image: kit.url(`/cgi-bin/showqrcode?ticket=${encodeURIComponent(t.ticket)}`) })),
      actionUrl: kit.url(`/phone/${encodeURIComponent(user.userId)}/act`),
      versionUrl: kit.url(`/phone/${encodeURIComponent(user.userId)}/version?app=${encodeURIComponent(appId)}`),
      version: chatVersion(state, appId, user.userId),
      clock: new Date(now + 8 * 3600_000).toISOString().slice(11, 16),
    });
  });

  router.get('/phone/:userId/version', (ctx) => {
    const user = requireUser(state, ctx.params.userId ?? '');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { version: chatVersion(state, pickApp(ctx), user.userId) };
  });

  router.post('/phone/:userId/act', async (ctx) => {
    const user = requireUser(state, ctx.params.userId ?? '');
    const form = await readFormBody(ctx);
    kit.checkCsrf(ctx, form);
    const appId = form.app ?? '';
    const back = kit.url(`/phone/${encodeURIComponent(user.userId)}?app=${encodeURIComponent(appId)}`);
    ctx.status = 303; // See Other: the phone page is fetched with GET after every action
    if (form.type === 'messages_off' || form.type === 'messages_on') {
      sb.setRelation(appId, user.userId, { messagesOff: form.type === 'messages_off' });
      return ctx.redirect(back);
    }
    const action = actionFromForm(form);
    await sb.act(appId, user.userId, action);
    // A view menu opens its page in WeChat's browser, after the VIEW event was pushed.
    if (action.type === 'view' && /^https?:\/\//i.test(action.url)) return ctx.redirect(action.url);
    ctx.redirect(back);
  });

  return router;
}
