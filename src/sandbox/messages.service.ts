/**
 * Messages the account sends (wechat-protocol.md §3 and §4; §10 items 5–6): customer-service
 * messages inside the per-user window, the typing indicator, template messages with
 * `client_msg_id` de-duplication and int64 msgids, and subscription notices.
 * Transport-free; `messages.routes.ts` parses bodies and answers.
 */
import type { SandboxDeps } from './deps.ts';
import { relationByOpenid } from './directory.ts';
import type { Relation, SandboxApp, WindowGrant } from './state.ts';
import { appendCapped } from './housekeeping.ts';
import { nextSeq, takeDaily } from './state.ts';
import { fail } from './wx-response.ts';

type Body = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const obj = (v: unknown): Body | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Body) : undefined);

const MEDIA_TYPES = new Set(['image', 'voice', 'mpnews']);
const CUSTOM_TYPES = new Set(['text', 'image', 'voice', 'video', 'music', 'news', 'mpnews', 'mpnewsarticle', 'msgmenu', 'wxcard', 'miniprogrampage', 'link']);

function recipient(deps: SandboxDeps, app: SandboxApp, touser: unknown): Relation {
  const openid = str(touser);
  if (!openid) fail(40003);
  const rel = relationByOpenid(deps.state, app.appId, openid);
  if (!rel) fail(40003);
  return rel;
}

function activeGrants(rel: Relation, now: number): WindowGrant[] {
  return [rel.windows.message, rel.windows.event].filter((g): g is WindowGrant => g !== undefined && now < g.expiresAt);
}

/** §3.1 body rules: known msgtype, non-empty text, one news article, a media_id. */
function checkCustomBody(body: Body): { msgtype: string; payload: Body } {
  const msgtype = str(body.msgtype);
  if (!msgtype || !CUSTOM_TYPES.has(msgtype)) fail(40008);
  const payload = obj(body[msgtype]);
  if (!payload) fail(47001);
  if (msgtype === 'text' && (str(payload.content) ?? '').trim() === '') fail(44004);
  if (msgtype === 'news') {
    const articles = payload.articles;
    if (!Array.isArray(articles) || articles.length === 0) fail(47001);
    if (articles.length > 1) fail(45008);
  }
  if (MEDIA_TYPES.has(msgtype) && !str(payload.media_id)) fail(40007, 'invalid media_id');
  return { msgtype, payload };
}

export function sendCustom(deps: SandboxDeps, app: SandboxApp, body: Body): void {
  const { state } = deps;
  const now = deps.now();
  const { msgtype, payload } = checkCustomBody(body);
  const rel = recipient(deps, app, body.touser);
  if (rel.blacklisted) fail(43019);
  if (!rel.following) fail(45015);
  if (rel.messagesOff) fail(48002);
  const grants = activeGrants(rel, now);
  if (grants.length === 0) fail(45015);
  // Spend the grant that runs out first, so the 48-hour quota lasts longest.
  const grant = grants.filter((g) => g.used < g.quota).sort((a, b) => a.expiresAt - b.expiresAt)[0];
  if (!grant) fail(45047);
  if (!takeDaily(state, app.appId, 'message/custom/send', state.limits.customSendDailyLimit, now)) fail(45009);
  grant.used += 1;
  rel.typingUntil = undefined; // §3.4: a real message cancels typing
  rel.lastInteractionAt = now;
  appendCapped(state.messages, {
    seq: nextSeq(state),
    at: now,
    kind: 'custom',
    appId: app.appId,
    userId: rel.userId,
    openid: rel.openid,
    msgType: msgtype,
    payload: { ...payload, ...(obj(body.customservice) ? { customservice: body.customservice } : {}) },
  }, state.limits.logCap);
}

/** §3.4: Typing / CancelTyping. */
export function typing(deps: SandboxDeps, app: SandboxApp, body: Body): void {
  const now = deps.now();
  const command = str(body.command);
  if (command !== 'Typing' && command !== 'CancelTyping') fail(45072);
  const rel = recipient(deps, app, body.touser);
  if (!rel.following || activeGrants(rel, now).length === 0) fail(45015);
  if (command === 'CancelTyping') {
    rel.typingUntil = undefined;
    return;
  }
  const L = deps.state.limits;
  if (rel.lastInteractionAt === undefined || now - rel.lastInteractionAt > L.typingInteractionSec * 1000) fail(45080);
  if (rel.typingUntil !== undefined && now < rel.typingUntil) fail(45081);
  rel.typingUntil = now + L.typingDurationSec * 1000;
}

/**
 * `data` must fill every keyword of the template with a non-empty string value (47003,
 * naming the field). `first`/`remark` are tolerated and dropped, as WeChat has done since 2023.
 */
function checkTemplateData(keywords: string[], data: unknown): Record<string, { value: string; color?: string }> {
  const d = obj(data);
  if (!d) fail(47003, 'argument invalid! data is empty');
  const out: Record<string, { value: string; color?: string }> = {};
  for (const key of Object.keys(d)) {
    if (!keywords.includes(key) && key !== 'first' && key !== 'remark') fail(47003, `argument invalid! data.${key} is not a keyword of the template`);
  }
  for (const key of keywords) {
    const entry = obj(d[key]);
    const value = entry?.value;
    if (typeof value !== 'string' || value.trim() === '') fail(47003, `argument invalid! data.${key}.value is empty`);
    out[key] = { value, ...(str(entry?.color) ? { color: str(entry?.color) } : {}) };
  }
  return out;
}

export interface TemplateSent {
  msgid: string;
  /** False when the same client_msg_id was seen within 10 minutes: nothing new was sent. */
  fresh: boolean;
  rel: Relation;
  status: string;
}

export function sendTemplate(deps: SandboxDeps, app: SandboxApp, body: Body): TemplateSent {
  const { state } = deps;
  const now = deps.now();
  const rel = recipient(deps, app, body.touser);
  const templateId = str(body.template_id);
  if (!templateId) fail(40037);
  const keywords = app.templates.get(templateId);
  if (!keywords) fail(40037);
  if (rel.blacklisted) fail(43019);
  if (!rel.following) fail(43004);
  const data = checkTemplateData(keywords, body.data);

  const clientMsgId = str(body.client_msg_id);
  const dedupKey = clientMsgId ? `${app.appId}|${rel.openid}|${clientMsgId}` : undefined;
  if (dedupKey) {
    const seen = state.templateDedup.get(dedupKey);
    if (seen && now - seen.at < state.limits.templateDedupSec * 1000) return { msgid: seen.msgid, fresh: false, rel, status: 'success' };
  }
  if (!takeDaily(state, app.appId, 'message/template/send', state.limits.templateDailyLimit, now)) fail(45009);
  state.seq.msgid += 1n;
  const msgid = state.seq.msgid.toString();
  if (dedupKey) state.templateDedup.set(dedupKey, { msgid, at: now });

  // A user who refused the account's messages: accepted here, reported failed in the event (§4.2).
  const status = rel.messagesOff ? 'failed:user block' : 'success';
  if (!rel.messagesOff) {
    const miniprogram = obj(body.miniprogram);
    appendCapped(state.messages, {
      seq: nextSeq(state),
      at: now,
      kind: 'template',
      appId: app.appId,
      userId: rel.userId,
      openid: rel.openid,
      msgType: 'template',
      msgid,
      payload: { template_id: templateId, keywords, data, ...(str(body.url) ? { url: body.url } : {}), ...(miniprogram ? { miniprogram } : {}) },
    }, state.limits.logCap);
  }
  return { msgid, fresh: true, rel, status };
}

/**
 * §4.4 subscription notice. Both body shapes are accepted (§13.6): `page` + `miniprogram`
 * (SDKs) or `page` + `miniprogram_state` + `lang` (new doc). Needs an opt-in (43101).
 */
export function sendSubscribe(deps: SandboxDeps, app: SandboxApp, body: Body): void {
  const { state } = deps;
  const rel = recipient(deps, app, body.touser);
  const templateId = str(body.template_id);
  if (!templateId) fail(40037);
  const keywords = app.templates.get(templateId);
  if (!keywords) fail(40037);
  const data = checkTemplateData(keywords, body.data);
  const opt = rel.optIns.get(templateId);
  if (!opt || (!opt.longTerm && opt.oneTime <= 0)) fail(43101);
  if (!opt.longTerm) opt.oneTime -= 1;
  const miniprogram = obj(body.miniprogram);
  appendCapped(state.messages, {
    seq: nextSeq(state),
    at: deps.now(),
    kind: 'subscribe',
    appId: app.appId,
    userId: rel.userId,
    openid: rel.openid,
    msgType: 'subscribe',
    payload: { template_id: templateId, keywords, data, ...(str(body.page) ? { page: body.page } : {}), ...(miniprogram ? { miniprogram } : {}) },
  }, state.limits.logCap);
}
