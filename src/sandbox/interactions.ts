/**
 * What a simulated person does inside WeChat, and its consequences: follow state, the
 * customer-service window each interaction opens (wechat-protocol.md §3.2), and the push to
 * the account's server. The control API, the phone page and `Sandbox.push` all end here.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { AppError } from '../http/errors.ts';
import type { SandboxDeps } from './deps.ts';
import { relationOf, requireApp, requireUser, setFollowing } from './directory.ts';
import { parseOrThrow } from './validate.ts';
import type { Pusher } from './pusher.ts';
import type { PushResult, Relation, SandboxApp } from './state.ts';

export const userActionSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text'), content: z.string().min(1).max(2000) }).strict(),
  z.object({ type: z.literal('voice'), recognition: z.string().max(2000).optional(), format: z.string().optional() }).strict(),
  z.object({ type: z.literal('image'), picUrl: z.url().optional() }).strict(),
  z
    .object({ type: z.literal('location'), latitude: z.number(), longitude: z.number(), scale: z.number().int().optional(), label: z.string().optional() })
    .strict(),
  z.object({ type: z.literal('location_report'), latitude: z.number(), longitude: z.number(), precision: z.number().optional() }).strict(),
  z.object({ type: z.literal('click'), key: z.string().min(1).max(128) }).strict(),
  z.object({ type: z.literal('view'), url: z.string().min(1) }).strict(),
  z.object({ type: z.literal('scancode'), key: z.string().min(1), result: z.string(), waitmsg: z.boolean().optional() }).strict(),
  z.object({ type: z.literal('follow') }).strict(),
  z.object({ type: z.literal('unfollow') }).strict(),
  z.object({ type: z.literal('scan'), ticket: z.string().min(1) }).strict(),
]);
export type UserAction = z.input<typeof userActionSchema>;

/** Interactions that open the 3-messages/1-minute window (§3.2); `VIEW` does not. */
const EVENT_GRANTS = new Set(['subscribe', 'SCAN', 'CLICK', 'scancode_push', 'scancode_waitmsg']);
const USER_MESSAGES = new Set(['text', 'image', 'voice', 'video', 'shortvideo', 'location', 'link']);

export interface Interactions {
  /** Low level: `message` without ToUserName/FromUserName/CreateTime (filled here). */
  push(p: { appId: string; userId: string; message: Record<string, unknown> }): Promise<PushResult>;
  act(appId: string, userId: string, action: UserAction): Promise<PushResult>;
  /** Background event, not an interaction: no window, nothing shown to the user. */
  templateFinished(appId: string, userId: string, msgid: string, status: string): Promise<PushResult>;
}

export function createInteractions(deps: SandboxDeps, pusher: Pusher): Interactions {
  const { state } = deps;

  function envelope(app: SandboxApp, rel: Relation, message: Record<string, unknown>): Record<string, unknown> {
    const fields: Record<string, unknown> = {
      ToUserName: app.originalId,
      FromUserName: rel.openid,
      CreateTime: Math.floor(deps.now() / 1000),
      ...message,
    };
    if (fields.MsgType !== 'event' && fields.MsgId === undefined) {
      state.seq.inboundMsgId += 1n;
      fields.MsgId = state.seq.inboundMsgId;
    }
    return fields;
  }

  /** Follow state and the CS window follow from what the person did. */
  function applyInteraction(rel: Relation, fields: Record<string, unknown>): void {
    const now = deps.now();
    const L = state.limits;
    const event = fields.MsgType === 'event' ? String(fields.Event) : undefined;
    if (event === 'subscribe') {
      const ticket = typeof fields.Ticket === 'string' ? state.qrTickets.get(fields.Ticket) : undefined;
      setFollowing(state, rel, true, now, ticket ? 'ADD_SCENE_QR_CODE' : 'ADD_SCENE_SEARCH');
      if (ticket) {
        rel.qrScene = ticket.sceneId;
        rel.qrSceneStr = ticket.sceneStr;
      }
    }
    if (event === 'unsubscribe') setFollowing(state, rel, false, now);
    if (event !== undefined && EVENT_GRANTS.has(event)) {
      rel.windows.event = { kind: 'event', grantedAt: now, expiresAt: now + L.csEventWindowSec * 1000, quota: L.csEventQuota, used: 0 };
      rel.lastInteractionAt = now;
    }
    if (event === undefined && USER_MESSAGES.has(String(fields.MsgType))) {
      rel.windows.message = { kind: 'message', grantedAt: now, expiresAt: now + L.csMessageWindowSec * 1000, quota: L.csMessageQuota, used: 0 };
      rel.lastInteractionAt = now;
    }
  }

  async function push(p: { appId: string; userId: string; message: Record<string, unknown> }): Promise<PushResult> {
    const app = requireApp(state, p.appId);
    requireUser(state, p.userId);
    const rel = relationOf(state, app.appId, p.userId, deps.salt);
    const fields = envelope(app, rel, p.message);
    applyInteraction(rel, fields);
    return pusher.deliver(app, rel, fields);
  }

  function messageFor(app: SandboxApp, rel: Relation, action: z.output<typeof userActionSchema>): Record<string, unknown> {
    switch (action.type) {
      case 'text':
        return { MsgType: 'text', Content: action.content };
      case 'voice':
        return { MsgType: 'voice', MediaId: randomBytes(24).toString('base64url'), Format: action.format ?? 'amr', Recognition: action.recognition };
      case 'image':
        return { MsgType: 'image', PicUrl: action.picUrl ?? 'http://mmbiz.qpic.cn/sandbox.jpg', MediaId: randomBytes(24).toString('base64url') };
      case 'location':
        return { MsgType: 'location', Location_X: action.latitude, Location_Y: action.longitude, Scale: action.scale ?? 15, Label: action.label ?? '' };
      case 'location_report':
        return { MsgType: 'event', Event: 'LOCATION', Latitude: action.latitude, Longitude: action.longitude, Precision: action.precision ?? 65 };
      case 'click':
        return { MsgType: 'event', Event: 'CLICK', EventKey: action.key };
      case 'view':
        return { MsgType: 'event', Event: 'VIEW', EventKey: action.url };
      case 'scancode':
        return {
          MsgType: 'event',
          Event: action.waitmsg ? 'scancode_waitmsg' : 'scancode_push',
          EventKey: action.key,
          ScanCodeInfo: { ScanType: 'qrcode', ScanResult: action.result },
        };
      case 'follow':
        if (rel.following) throw new AppError('request.conflict', 'already following');
        return { MsgType: 'event', Event: 'subscribe', EventKey: '' };
      case 'unfollow':
        if (!rel.following) throw new AppError('request.conflict', 'not following');
        return { MsgType: 'event', Event: 'unsubscribe', EventKey: '' };
      case 'scan': {
        const t = state.qrTickets.get(action.ticket);
        if (!t || t.appId !== app.appId) throw new AppError('request.not_found', 'unknown QR ticket for this account');
        if (t.expiresAt !== undefined && deps.now() >= t.expiresAt) throw new AppError('flow.expired', 'QR code expired');
        const scene = String(t.sceneId ?? t.sceneStr ?? '');
        // §5.5: a non-follower follows through the code (qrscene_ prefix); a follower gets SCAN.
        return rel.following
          ? { MsgType: 'event', Event: 'SCAN', EventKey: scene, Ticket: t.ticket }
          : { MsgType: 'event', Event: 'subscribe', EventKey: `qrscene_${scene}`, Ticket: t.ticket };
      }
    }
  }

  return {
    push,
    async act(appId, userId, input) {
      const action = parseOrThrow(userActionSchema, input);
      const app = requireApp(state, appId);
      requireUser(state, userId);
      const rel = relationOf(state, appId, userId, deps.salt);
      const message = messageFor(app, rel, action);
      if (!rel.following && action.type !== 'follow' && action.type !== 'scan') {
        // Only followers can chat or use the menu; the UI never offers it otherwise.
        throw new AppError('request.conflict', 'follow the account first');
      }
      return push({ appId, userId, message });
    },
    async templateFinished(appId, userId, msgid, status) {
      const app = requireApp(state, appId);
      const rel = relationOf(state, appId, userId, deps.salt);
      const fields = envelope(app, rel, { MsgType: 'event', Event: 'TEMPLATESENDJOBFINISH', MsgID: BigInt(msgid), Status: status });
      return pusher.deliver(app, rel, fields);
    },
  };
}
