/**
 * The in-memory world of the fake WeChat: official accounts, simulated people, their
 * relation to each account (follow state, customer-service window, opt-ins), the web-auth
 * codes and tokens, account tokens, QR tickets and the logs tests assert on.
 *
 * Plain data only; the rules live in the `*.service.ts` modules. Everything is keyed so
 * that one `reset()` (a fresh `createState`) forgets it all.
 */
import type { FaultRule } from './faults.ts';
import { defaultLimits, type SandboxLimits } from './limits.ts';

export type { SandboxLimits } from './limits.ts';

export type PushMode = 'plain' | 'compat' | 'safe';
export type WebAuthScope = 'snsapi_base' | 'snsapi_userinfo';
/** Scopes a code or user token can carry: an official account's, or a website app's QR login (§1.10). */
export type SnsScope = WebAuthScope | 'snsapi_login';

export interface MenuItem {
  key: string;
  name: string;
  /** `click` opens the 3-message window; `view` does not (§3.2). */
  type: 'click' | 'view';
  url?: string;
}

export interface SandboxApp {
  appId: string;
  appSecret: string;
  token: string;
  encodingAesKey?: string;
  mode: PushMode;
  originalId: string;
  name: string;
  pushUrl?: string;
  /** Bare domains, matched exactly (§1.1). */
  redirectDomains: string[];
  /**
   * Real WeChat rejects any port in redirect_uri (§1.1). A developer machine serves the
   * bridge on e.g. localhost:3000, so demo/test apps opt in to ports; production-like
   * checks keep the default `false`.
   */
  allowPortsInRedirect: boolean;
  openPlatformId?: string;
  /** templateId → keyword names (the `data` keys, without `.DATA`). */
  templates: Map<string, string[]>;
  /** Unverified accounts have no web authorization (10005, §1.1). */
  verified: boolean;
  /** Redirect every authorization twice with the same code (§1.4 [OBS]). */
  doubleRedirect: boolean;
  /** Also return unionid for snsapi_base exchanges (observed, §13.4). */
  unionIdInBaseScope: boolean;
  /** When set, token endpoints answer 40164 to any other caller IP (§2.4). */
  ipWhitelist?: string[];
  menu: MenuItem[];
}

/**
 * An Open Platform website app (网站应用, §1.10): its own AppID/AppSecret, only the QR login
 * and the sns/* endpoints. People get an openid per website app; the unionid is shared by
 * every app of the same Open Platform account (`openPlatformId`).
 */
export interface SandboxWebsiteApp {
  appId: string;
  appSecret: string;
  name: string;
  /** 授权回调域: bare domains, matched exactly like §1.1. */
  redirectDomains: string[];
  /** As for official accounts: real WeChat refuses ports; demo/test apps opt in. */
  allowPortsInRedirect: boolean;
  openPlatformId?: string;
}

/** One QR shown by `connect/qrconnect`, waiting for a phone to scan and confirm it. */
export interface QrLogin {
  uuid: string;
  appId: string;
  redirectUri: string;
  state: string;
  lang: 'cn' | 'en';
  createdAt: number;
  expiresAt: number;
  status: 'waiting' | 'confirmed' | 'declined';
  /** Where the desktop browser goes once the phone has answered. */
  location?: string;
}

export interface SandboxUser {
  userId: string;
  nickname: string;
  avatarUrl: string;
  hasUnionId: boolean;
  /** Authorizes through the snapshot page: virtual openid/unionid, is_snapshotuser:1 (§1.8). */
  snapshot: boolean;
  createdAt: number;
}

export interface WindowGrant {
  kind: 'message' | 'event';
  grantedAt: number;
  expiresAt: number;
  quota: number;
  used: number;
}

export interface OptIn {
  oneTime: number;
  longTerm: boolean;
}

/** One person as seen by one official account. */
export interface Relation {
  appId: string;
  userId: string;
  openid: string;
  following: boolean;
  /** Ordering key of the follower list (§7.3); renewed on every follow. */
  followSeq: number;
  subscribeTime?: number;
  subscribeScene?: string;
  qrScene?: number;
  qrSceneStr?: string;
  /** The account put the user on its blacklist (43019). */
  blacklisted: boolean;
  /** The user refused messages from the account (48002, `failed:user block`). */
  messagesOff: boolean;
  /**
   * The latest grant of each kind: a new interaction of a kind replaces the previous one,
   * so quotas do not pile up (our reading of §3.2; the doc is silent on stacking).
   */
  windows: { message?: WindowGrant; event?: WindowGrant };
  lastInteractionAt?: number;
  typingUntil?: number;
  optIns: Map<string, OptIn>;
}

export interface AuthCode {
  code: string;
  appId: string;
  userId: string;
  scope: SnsScope;
  snapshot: boolean;
  issuedAt: number;
  expiresAt: number;
  usedAt?: number;
}

export interface UserToken {
  accessToken: string;
  refreshToken: string;
  appId: string;
  userId: string;
  openid: string;
  unionid?: string;
  scope: SnsScope;
  snapshot: boolean;
  expiresAt: number;
  refreshExpiresAt: number;
}

export interface AccountToken {
  token: string;
  appId: string;
  kind: 'classic' | 'stable';
  issuedAt: number;
  expiresAt: number;
  /** Stops working at this instant (superseded or force-refreshed). */
  invalidAfter?: number;
}

export interface StableTokenState {
  current?: AccountToken;
  lastForceAt?: number;
}

export interface QrTicket {
  ticket: string;
  appId: string;
  actionName: 'QR_SCENE' | 'QR_STR_SCENE' | 'QR_LIMIT_SCENE' | 'QR_LIMIT_STR_SCENE';
  sceneId?: number;
  sceneStr?: string;
  url: string;
  createdAt: number;
  expiresAt?: number;
}

export type DeliveredKind = 'custom' | 'template' | 'subscribe' | 'passive';

export interface DeliveredMessage {
  seq: number;
  at: number;
  kind: DeliveredKind;
  appId: string;
  userId: string;
  openid: string;
  /** msgtype (custom), MsgType (passive), 'template' / 'subscribe'. */
  msgType: string;
  payload: Record<string, unknown>;
  /** int64 as a decimal string (template sends). */
  msgid?: string;
}

export interface CallRecord {
  seq: number;
  at: number;
  method: string;
  path: string;
  appId?: string;
  /** 0 for success, also for query endpoints that answer without `errcode`. */
  errcode: number;
  ip: string;
  fault?: 'errcode' | 'latency' | 'drop_before' | 'drop_after';
}

export type PushOutcome =
  | 'success' // literal `success`
  | 'empty' // zero-length body
  | 'reply' // a valid passive reply
  | 'invalid_reply'
  | 'timeout'
  | 'http_error'
  | 'network_error'
  | 'no_push_url';

export interface PushResult {
  seq: number;
  appId: string;
  userId: string;
  openid: string;
  /** The XML WeChat built (before encryption). */
  xml: string;
  fields: Record<string, unknown>;
  outcome: PushOutcome;
  ok: boolean;
  attempts: number;
  status?: number;
  /** The body the receiver returned (raw), and its plaintext XML when decrypted. */
  replyRaw?: string;
  replyXml?: string;
  reply?: Record<string, unknown>;
  /** What the user would see instead of a reply, e.g. "该公众号暂时无法提供服务，请稍后再试". */
  userNotice?: string;
  detail?: string;
  at: number;
}

export interface SandboxState {
  limits: SandboxLimits;
  apps: Map<string, SandboxApp>;
  /** Open Platform website apps (§1.10), apart from the official accounts. */
  websiteApps: Map<string, SandboxWebsiteApp>;
  /** uuid → a QR login page's pending scan. */
  qrLogins: Map<string, QrLogin>;
  users: Map<string, SandboxUser>;
  /** `${appId}|${userId}` → relation. */
  relations: Map<string, Relation>;
  /** `${appId}|${openid}` → userId (real openids only, never snapshot ones). */
  openidIndex: Map<string, string>;
  codes: Map<string, AuthCode>;
  userTokens: Map<string, UserToken>;
  refreshTokens: Map<string, UserToken>;
  accountTokens: Map<string, AccountToken>;
  /** appId → the newest cgi-bin/token (older ones are already marked superseded). */
  latestClassic: Map<string, AccountToken>;
  stable: Map<string, StableTokenState>;
  /** `${appId}|${api}|${day}` → calls counted against a daily quota. */
  daily: Map<string, number>;
  /** `${appId}|${openid}|${client_msg_id}` → first send. */
  templateDedup: Map<string, { msgid: string; at: number }>;
  qrTickets: Map<string, QrTicket>;
  faults: FaultRule[];
  messages: DeliveredMessage[];
  pushes: PushResult[];
  calls: CallRecord[];
  seq: { user: number; follow: number; log: number; msgid: bigint; inboundMsgId: bigint };
}

export function createState(limits: Partial<SandboxLimits> = {}): SandboxState {
  return {
    limits: { ...defaultLimits, ...limits },
    apps: new Map(),
    websiteApps: new Map(),
    qrLogins: new Map(),
    users: new Map(),
    relations: new Map(),
    openidIndex: new Map(),
    codes: new Map(),
    userTokens: new Map(),
    refreshTokens: new Map(),
    accountTokens: new Map(),
    latestClassic: new Map(),
    stable: new Map(),
    daily: new Map(),
    templateDedup: new Map(),
    qrTickets: new Map(),
    faults: [],
    messages: [],
    pushes: [],
    calls: [],
    // msgids are int64 above 2^53 on purpose, so clients must not parse them as doubles (§4.1).
    seq: { user: 0, follow: 0, log: 0, msgid: 3_487_542_469_355_618_313n, inboundMsgId: 24_312_345_678_901_234n },
  };
}

export const relationKey = (appId: string, userId: string): string => `${appId}|${userId}`;

/** Next value of the shared log sequence (messages, pushes, calls share one ordering). */
export function nextSeq(state: SandboxState): number {
  state.seq.log += 1;
  return state.seq.log;
}

/** WeChat's daily quotas reset at midnight Beijing time (UTC+8). */
export function beijingDay(nowMs: number): number {
  return Math.floor((nowMs + 8 * 3600_000) / 86_400_000);
}

/** Counts one call against a daily quota; false when the quota is already used up. */
export function takeDaily(state: SandboxState, appId: string, api: string, limit: number, nowMs: number): boolean {
  const key = `${appId}|${api}|${beijingDay(nowMs)}`;
  const used = state.daily.get(key) ?? 0;
  if (used >= limit) return false;
  state.daily.set(key, used + 1);
  return true;
}
