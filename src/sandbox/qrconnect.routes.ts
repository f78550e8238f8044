/**
 * The website QR login pages of open.weixin.qq.com (wechat-protocol.md §1.10):
 * - `GET /connect/qrconnect`: checks the link, then shows a QR. Its static script polls
 *   `/connect/qrconnect/poll` and sends the browser on once a phone has answered, as
 *   WeChat's page does. Below the QR, a "sandbox phone" panel scans and confirms (or
 *   refuses) in the same browser, for a desktop user without a second device.
 * - `GET/POST /connect/confirm`: what the QR opens on a phone (any browser here): pick the
 *   simulated WeChat user, then 确认登录 or 取消.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import QRCode from 'qrcode';
import { readFormBody } from './body.ts';
import type { SandboxDeps } from './deps.ts';
import { createUser } from './directory.ts';
import type { PageKit } from './page-kit.ts';
import { answerQrLogin, checkQrConnect, pendingQrLogin, qrLoginStatus, startQrLogin } from './qrconnect.service.ts';
import type { QrLogin } from './state.ts';

const uuidOf = (v: unknown): string => (typeof v === 'string' && /^[A-Za-z0-9_-]{16}$/.test(v) ? v : '');

export function createQrConnectRoutes(deps: SandboxDeps, kit: PageKit): Router {
  const router = new Router();
  const { state } = deps;

  /** The simulated people a phone can be, the last one preselected. */
  const people = () =>
    [...state.users.values()].map((u, i, all) => ({ userId: u.userId, nickname: u.nickname, initial: [...u.nickname][0] ?? '?', hasUnionId: u.hasUnionId, checked: i === all.length - 1 }));

  const appName = (login: QrLogin) => state.websiteApps.get(login.appId)?.name ?? login.appId;

  /** The phone's answer from a form: the chosen (or a new) simulated user, and the decision. */
  function answer(form: Record<string, string>, uuid: string) {
    pendingQrLogin(state, uuid, deps.now());
    let userId = form.user ?? '';
    if (userId === '__new') userId = createUser(state, { nickname: form.new_nickname }, deps.salt, deps.now()).userId;
    return answerQrLogin(state, uuid, { userId, allow: form.decision !== 'decline' }, deps.now());
  }

  router.get('/connect/qrconnect', async (ctx) => {
    const check = checkQrConnect(state, [...new URLSearchParams(ctx.querystring)]);
    if (!check.ok) return kit.render(ctx, 'error', { title: '登录失败 / Login failed', message: check.error.message, detail: check.error.detail });
    const login = startQrLogin(state, check.request, deps.now());
    const scanUrl = `${ctx.protocol}://${ctx.host}${kit.url('/connect/confirm')}?uuid=${login.uuid}`;
    kit.render(ctx, 'qrconnect', {
      title: check.request.lang === 'en' ? 'Log in with WeChat' : '微信登录',
      appName: check.request.app.name,
      appId: check.request.app.appId,
      uuid: login.uuid,
      qr: await QRCode.toDataURL(scanUrl, { margin: 1, width: 280, errorCorrectionLevel: 'M' }),
      scanUrl,
      pollUrl: `${kit.url('/connect/qrconnect/poll')}?uuid=${login.uuid}`,
      users: people(),
      csrf: kit.csrfToken(ctx),
      action: kit.url('/connect/qrconnect/confirm'),
      expiresInMin: Math.round(state.limits.qrLoginTtlSec / 60),
    });
  });

  // The sandbox phone panel on the QR page: scan and answer, then follow the browser's redirect.
  router.post('/connect/qrconnect/confirm', async (ctx) => {
    const form = await readFormBody(ctx);
    kit.checkCsrf(ctx, form);
    ctx.redirect(answer(form, uuidOf(form.uuid)).location);
  });

  router.get('/connect/qrconnect/poll', (ctx: Context) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = qrLoginStatus(state, uuidOf(ctx.query.uuid), deps.now());
  });

  router.get('/connect/confirm', (ctx) => {
    const uuid = uuidOf(ctx.query.uuid);
    const login = pendingQrLogin(state, uuid, deps.now());
    kit.render(ctx, 'qrconfirm', { appName: appName(login), uuid, users: people(), csrf: kit.csrfToken(ctx), action: kit.url('/connect/confirm'), done: null });
  });

  router.post('/connect/confirm', async (ctx) => {
    const form = await readFormBody(ctx);
    kit.checkCsrf(ctx, form);
    const uuid = uuidOf(form.uuid);
    const name = appName(pendingQrLogin(state, uuid, deps.now()));
    const out = answer(form, uuid);
    kit.render(ctx, 'qrconfirm', { appName: name, uuid, users: [], csrf: '', action: '', done: out.code ? 'confirmed' : 'declined' });
  });

  return router;
}
