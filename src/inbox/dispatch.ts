/**
 * What each message and event does (wechat-protocol.md §5.4, §5.5, §4.2, §3.2). `accept`
 * does the part that must be durable before WeChat is acknowledged — subscribe state and
 * its webhooks, binding-code redemption, delivery receipts — and returns the answer still
 * being worked out (`reply`), which the push service races against its budget.
 *
 * Every user interaction that opens the customer-service window is recorded (a user message:
 * the 48-hour window; a click, follow or QR scan: the 1-minute one; a VIEW: nothing). Writes
 * that are not worth delaying the acknowledgement (last location, last interaction) run after
 * it, as background tasks.
 */
import type { Logger } from 'pino';
import type { OfficialAccountConfig } from '../config/index.ts';
import type { RedeemResult } from '../linking/types.ts';
import type { Db } from '../store/db.ts';
import type { InboundMessage } from '../wechat/messages.ts';
import type { Answers, Who } from './answers.service.ts';
import type { CsWindow, InteractionKind } from './cs-window.ts';
import { lockIdentity, saveLocation, touchInteraction, type LastLocation } from './identities.queries.ts';
import { text, type Reply } from './reply.ts';
import type { Subscriptions } from './subscriptions.service.ts';
import type { Tasks } from './tasks.ts';
import { texts } from './texts.ts';

/**
 * The linking feature's `redeemBindingCode` (src/linking/binding-codes.service.ts), given the
 * QR scene of a parametric QR code (DESIGN.md "binding-code").
 */
export type RedeemBindingCodeByScene = (input: { by: { qrScene: string }; identityId: string; actor: string; source: string }) => Promise<RedeemResult>;

/** Binding-code scenes carry this prefix (linking makes them `bc_<random>`); other QR codes of the account are not ours to answer. */
const BINDING_CODE_SCENE = /^bc_[A-Za-z0-9]{8,64}$/;

export type OnTemplateJobFinished = (p: { appId: string; msgId: string; status: string; openid: string }) => Promise<void>;

export interface Plan {
  reply: Promise<Reply | null>;
}

export interface Dispatcher {
  accept(account: OfficialAccountConfig, msg: InboundMessage, dedupeKey: string): Promise<Plan>;
}

export interface DispatcherDeps {
  db: Db;
  log: Logger;
  now: () => number;
  window: CsWindow;
  answers: Answers;
  subscriptions: Subscriptions;
  tasks: Tasks;
  merchantName: (merchantId: string) => string;
  redeemBindingCode?: RedeemBindingCodeByScene;
  onTemplateJobFinished?: OnTemplateJobFinished;
  /** Last-interaction writes per user at most this often (default 60 s). */
  touchEveryMs?: number;
}

const none: Plan = { reply: Promise.resolve(null) };
const ready = (r: Reply | null): Plan => ({ reply: Promise.resolve(r) });
const later = (r: Promise<Reply | null>): Plan => ({ reply: r });

export function createDispatcher(d: DispatcherDeps): Dispatcher {
  const touchEveryMs = d.touchEveryMs ?? 60_000;
  const touched = new Map<string, number>();

  /**
   * Opens the window (Kv, before the ack: a late reply needs it) and notes the time (after).
   * WeChat counts the window from the interaction, not from our receipt of it (a retried
   * push arrives seconds later): `at` is the push's CreateTime, never later than now.
   */
  async function interaction(who: Who, kind: InteractionKind, at: Date): Promise<void> {
    const { appId } = who.account;
    await d.window.record(appId, who.openid, kind, Math.min(d.now(), at.getTime())).catch((err: unknown) => d.log.warn({ err, appId }, 'cs window not recorded'));
    const t = d.now();
    const k = `${appId}|${who.openid}`;
    if (t - (touched.get(k) ?? -Infinity) < touchEveryMs) return;
    if (touched.size > 50_000) touched.clear();
    touched.set(k, t);
    d.tasks.run('touch interaction', () => touchInteraction(d.db, appId, who.openid, new Date(t)));
  }

  function keepLocation(who: Who, loc: Omit<LastLocation, 'at'>): void {
    const at = new Date(d.now()).toISOString();
    d.tasks.run('save location', () => saveLocation(d.db, who.account.appId, who.openid, { ...loc, at }));
  }

  async function redeem(who: Who, identityId: string, scene: string): Promise<Reply | undefined> {
    if (!d.redeemBindingCode || !BINDING_CODE_SCENE.test(scene)) return undefined;
    const r = await d.redeemBindingCode({ by: { qrScene: scene }, identityId, actor: `user:${identityId}`, source: 'push' });
    if (r.ok) return text(texts.qrBound(d.merchantName(r.merchantId), r.binding.accountDisplay));
    return text(texts.qrRefused[r.reason]);
  }

  async function follow(who: Who, at: Date, scene: string | undefined): Promise<Plan> {
    const change = await d.subscriptions.set({ appId: who.account.appId, openid: who.openid, subscribed: true, at });
    await interaction(who, 'event', at);
    const bound = scene ? await redeem(who, change.identityId, scene) : undefined;
    return ready(bound ?? d.answers.welcome(who));
  }

  async function scan(who: Who, at: Date, scene: string): Promise<Plan> {
    await interaction(who, 'event', at);
    if (!d.redeemBindingCode) return none;
    // The identity row must exist before a binding can point at it.
    const identity = await lockIdentity(d.db, who.account.appId, who.openid);
    return ready((await redeem(who, identity.id, scene)) ?? null);
  }

  return {
    async accept(account, msg, dedupeKey) {
      const who: Who = { account, openid: msg.FromUserName, dedupeKey };
      const at = new Date(msg.CreateTime * 1000);
      switch (msg.kind) {
        case 'message.text':
          // A tap on a msgmenu item arrives as a text carrying the item's id, and opens the menu-click window (§3.2).
          await interaction(who, msg.bizmsgmenuid ? 'event' : 'message', at);
          return later(d.answers.forText(who, msg.Content));
        case 'message.voice': {
          await interaction(who, 'message', at);
          // ASR is being retired and may be empty (§13.11): ask the user to type instead.
          const said = msg.Recognition?.trim();
          return said ? later(d.answers.forText(who, said)) : ready(text(texts.pleaseType));
        }
        case 'message.location':
          await interaction(who, 'message', at);
          keepLocation(who, { latitude: msg.Location_X, longitude: msg.Location_Y });
          return none;
        case 'message.image':
        case 'message.video':
        case 'message.shortvideo':
        case 'message.link':
        case 'message.miniprogrampage':
        case 'message.unknown':
          await interaction(who, 'message', at);
          return ready(text(texts.unsupported));
        case 'event.subscribe':
          return follow(who, at, msg.qrScene);
        case 'event.unsubscribe':
          await d.subscriptions.set({ appId: account.appId, openid: who.openid, subscribed: false, at });
          await d.window.clear(account.appId, who.openid).catch((err: unknown) => d.log.warn({ err }, 'cs window not cleared'));
          return none;
        case 'event.SCAN':
          return scan(who, at, msg.qrScene);
        case 'event.LOCATION':
          keepLocation(who, { latitude: msg.Latitude, longitude: msg.Longitude, precision: msg.Precision });
          return none;
        case 'event.CLICK':
          await interaction(who, 'event', at);
          return later(d.answers.forMenu(who, msg.EventKey));
        case 'event.VIEW':
          d.tasks.run('notify view', () => d.answers.notifyView(who, msg.EventKey));
          return none;
        case 'event.scancode_push':
        case 'event.scancode_waitmsg':
          await interaction(who, 'event', at);
          return none;
        case 'event.TEMPLATESENDJOBFINISH':
          // A delivery receipt; the notices feature must have it durably before WeChat is answered.
          await d.onTemplateJobFinished?.({ appId: account.appId, msgId: msg.MsgID, status: msg.Status, openid: who.openid });
          return none;
        default:
          return none;
      }
    },
  };
}
