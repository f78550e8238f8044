/**
 * User management and parametric QR codes (wechat-protocol.md §7, §5.5).
 * `cgi-bin/user/info` no longer returns nickname/avatar (since 2021-12-27) and a
 * non-follower's entry holds only subscribe:0, openid and unionid.
 */
import type { SandboxDeps } from './deps.ts';
import { relationByOpenid } from './directory.ts';
import { newQrTicket, randomAlnum, unionidFor } from './ids.ts';
import type { QrTicket, Relation, SandboxApp } from './state.ts';
import { takeDaily } from './state.ts';
import { fail } from './wx-response.ts';

function unionOf(deps: SandboxDeps, app: SandboxApp, rel: Relation): Record<string, string> {
  const user = deps.state.users.get(rel.userId);
  return app.openPlatformId && user?.hasUnionId ? { unionid: unionidFor(app.openPlatformId, rel.userId, deps.salt) } : {};
}

function describe(deps: SandboxDeps, app: SandboxApp, rel: Relation): Record<string, unknown> {
  if (!rel.following) return { subscribe: 0, openid: rel.openid, ...unionOf(deps, app, rel) };
  return {
    subscribe: 1,
    openid: rel.openid,
    subscribe_time: rel.subscribeTime ?? 0,
    ...unionOf(deps, app, rel),
    remark: '',
    groupid: 0,
    tagid_list: [],
    subscribe_scene: rel.subscribeScene ?? 'ADD_SCENE_OTHERS',
    qr_scene: rel.qrScene ?? 0,
    qr_scene_str: rel.qrSceneStr ?? '',
  };
}

export function userInfo(deps: SandboxDeps, app: SandboxApp, openid: string | undefined): Record<string, unknown> {
  if (!openid) fail(40003);
  const rel = relationByOpenid(deps.state, app.appId, openid);
  if (!rel) fail(40003);
  return describe(deps, app, rel);
}

export function batchGet(deps: SandboxDeps, app: SandboxApp, body: Record<string, unknown>): Record<string, unknown> {
  const list = body.user_list;
  if (!Array.isArray(list) || list.length === 0) fail(47001);
  // The doc gives no code for > 100 entries; 40032 "invalid openid list size" is the plausible one (§7.2).
  if (list.length > deps.state.limits.batchGetMax) fail(40032);
  const infos = list.map((entry: unknown) => {
    const openid = typeof entry === 'object' && entry !== null ? (entry as { openid?: unknown }).openid : undefined;
    return userInfo(deps, app, typeof openid === 'string' ? openid : undefined);
  });
  return { user_info_list: infos };
}

/**
 * §7.3 follower list in follow order. `next_openid` is the last openid of the page even
 * when nothing follows, so the final call returns count 0 and an empty next_openid.
 */
export function followers(deps: SandboxDeps, app: SandboxApp, nextOpenid: string | undefined): Record<string, unknown> {
  const { state } = deps;
  if (!takeDaily(state, app.appId, 'user/get', state.limits.userGetDailyLimit, deps.now())) fail(45009);
  const all = [...state.relations.values()].filter((r) => r.appId === app.appId && r.following).sort((a, b) => a.followSeq - b.followSeq);
  let start = 0;
  if (nextOpenid) {
    const idx = all.findIndex((r) => r.openid === nextOpenid);
    if (idx < 0) fail(40003);
    start = idx + 1;
  }
  const page = all.slice(start, start + state.limits.userGetPageSize).map((r) => r.openid);
  if (page.length === 0) return { total: all.length, count: 0, next_openid: '' };
  return { total: all.length, count: page.length, data: { openid: page }, next_openid: page[page.length - 1] };
}

const ACTIONS = new Set(['QR_SCENE', 'QR_STR_SCENE', 'QR_LIMIT_SCENE', 'QR_LIMIT_STR_SCENE']);

/** Temporary codes: scene_id a non-zero 32-bit integer, 60 s default, 30 days max; permanent scene_id 1..100000; scene_str 1..64 chars. */
export function createQr(deps: SandboxDeps, app: SandboxApp, body: Record<string, unknown>): QrTicket {
  const { state } = deps;
  const action = body.action_name;
  if (typeof action !== 'string' || !ACTIONS.has(action)) fail(47001, 'data format error: action_name');
  const scene = (body.action_info as { scene?: { scene_id?: unknown; scene_str?: unknown } } | undefined)?.scene;
  const temporary = action === 'QR_SCENE' || action === 'QR_STR_SCENE';
  const byString = action.endsWith('STR_SCENE');
  const ticket: QrTicket = {
    ticket: newQrTicket(),
    appId: app.appId,
    actionName: action as QrTicket['actionName'],
    url: `http://weixin.qq.com/q/${randomAlnum(22)}`,
    createdAt: deps.now(),
  };
  if (byString) {
    const s = scene?.scene_str;
    if (typeof s !== 'string' || s.length < 1 || s.length > 64) fail(47001, 'data format error: scene_str');
    ticket.sceneStr = s;
  } else {
    const id = scene?.scene_id;
    const max = temporary ? 4_294_967_295 : 100_000;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > max) fail(47001, 'data format error: scene_id');
    ticket.sceneId = id;
  }
  if (temporary) {
    const requested = body.expire_seconds;
    const secs = typeof requested === 'number' && requested > 0 ? Math.min(Math.floor(requested), state.limits.qrMaxExpireSec) : state.limits.qrDefaultExpireSec;
    ticket.expiresAt = ticket.createdAt + secs * 1000;
  }
  state.qrTickets.set(ticket.ticket, ticket);
  return ticket;
}
