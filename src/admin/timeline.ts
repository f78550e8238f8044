/**
 * An identity's timeline: what happened to one WeChat user, newest first, merged from
 * - the audit log: links, unlinks, refused links, failed proofs, admin retries;
 * - sign-ins to merchant apps (oauth refresh-token families) and the last WeChat login;
 * - messages and menu use (identity_activity): kind, time and intent, never content;
 * - notice deliveries: template, status, errcode, never the notice's data;
 * - the identity row's own timestamps (first seen, follow, unfollow).
 * Paged by time: each source gives at most a page before the cursor, the merge keeps a page.
 */
import type { Queryable } from '../store/db.ts';
import { activityOf, type ActivityRow } from './activity.queries.ts';
import { recentAuditFor, type AuditRow } from './audit.queries.ts';
import { listNoticeDeliveries, type NoticeDeliveryRow } from './deliveries.queries.ts';
import { loginsOf, type AdminIdentityRow, type LoginRow } from './identity.queries.ts';
import type { Scope } from './policy.ts';

export interface TimelineEvent {
  at: Date;
  kind: 'link' | 'unlink' | 'login' | 'subscribe' | 'message' | 'notice' | 'other';
  title: string;
  detail: string;
  merchantId: string | null;
  href?: string;
}

const titles: Record<string, [TimelineEvent['kind'], string]> = {
  'binding.linked': ['link', 'Linked an account'],
  'binding.unlinked': ['unlink', 'Unlinked an account'],
  'binding.default_changed': ['other', 'Changed the default account'],
  'binding.link_refused': ['other', 'A link was refused'],
  'proof.failed': ['other', 'A proof failed'],
  'deliveries.retried': ['notice', 'An admin retried a notice'],
};

/** Ids that the title and link already say, and free-text notes: not repeated in the detail. */
const HIDDEN = new Set(['note', 'noticeDelivery', 'webhookEvent']);

/** `before.x` / `after.x` pairs read as "x: before → after"; empty values are left out. */
export function describeDetail(detail: Record<string, unknown>): string {
  const shown = (v: unknown) => v !== null && v !== undefined && v !== '';
  const parts: string[] = [];
  const changes = new Map<string, { before?: unknown; after?: unknown }>();
  for (const [k, v] of Object.entries(detail)) {
    const m = /^(before|after)\.(.+)$/.exec(k);
    if (m) changes.set(m[2]!, { ...changes.get(m[2]!), [m[1]!]: v });
    else if (!HIDDEN.has(k) && shown(v)) parts.push(`${k}: ${String(v)}`);
  }
  for (const [k, c] of changes) {
    if (shown(c.before) && shown(c.after)) parts.push(`${k}: ${String(c.before)} → ${String(c.after)}`);
    else if (shown(c.before)) parts.push(`${k} was ${String(c.before)}`);
    else if (shown(c.after)) parts.push(`${k}: ${String(c.after)}`);
  }
  return parts.join(' · ');
}

export function fromAudit(a: AuditRow): TimelineEvent {
  const [kind, title] = titles[a.action] ?? ['other', a.action];
  const detail = describeDetail(a.detail);
  return {
    at: a.at,
    kind,
    title,
    detail: [a.actor.startsWith('admin:') ? 'by an admin' : '', detail].filter(Boolean).join(' — '),
    merchantId: a.merchant_id,
    href: a.binding_id ? `/admin/bindings/${a.binding_id}` : undefined,
  };
}

export const fromLogin = (l: LoginRow): TimelineEvent => ({
  at: l.created_at,
  kind: 'login',
  title: 'Signed in to a merchant app',
  detail: `client ${l.client_id}${l.amr.length ? ` · proven by ${l.amr.join(', ')}` : ''}`,
  merchantId: l.merchant_id,
});

const messageTitles: Record<string, string> = {
  'message.text': 'Sent a text message',
  'message.voice': 'Sent a voice message',
  'message.image': 'Sent an image',
  'message.video': 'Sent a video',
  'message.shortvideo': 'Sent a short video',
  'message.location': 'Shared a location',
  'message.link': 'Sent a link',
  'message.miniprogrampage': 'Sent a mini-program card',
  'event.subscribe': 'Followed (push)',
  'event.unsubscribe': 'Unfollowed (push)',
  'event.SCAN': 'Scanned a QR code',
  'event.CLICK': 'Tapped a menu item',
  'event.VIEW': 'Opened a menu link',
};

export const fromActivity = (a: ActivityRow): TimelineEvent => ({
  at: a.at,
  kind: 'message',
  title: messageTitles[a.kind] ?? `Sent ${a.kind.replace(/^(message|event)\./, '')}`,
  detail: a.intent ? `intent: ${a.intent}` : '',
  merchantId: a.merchant_id,
});

export const fromNotice = (d: NoticeDeliveryRow): TimelineEvent => ({
  at: d.created_at,
  kind: 'notice',
  title: `Notice ${d.status}`,
  detail: [d.template ? `template ${d.template}` : '', d.channel ?? '', d.errcode !== null ? `errcode ${d.errcode}` : '', d.error ?? ''].filter(Boolean).join(' · '),
  merchantId: d.merchant_id,
  href: `/admin/deliveries?tab=notices&merchant=${encodeURIComponent(d.merchant_id)}`,
});

/** The identity row's own moments. */
export function fromIdentity(identity: AdminIdentityRow): TimelineEvent[] {
  const events: TimelineEvent[] = [{ at: identity.created_at, kind: 'other', title: 'First seen', detail: `official account ${identity.app_id}`, merchantId: null }];
  if (identity.last_login_at) events.push({ at: identity.last_login_at, kind: 'login', title: 'Last WeChat login', detail: '', merchantId: null });
  if (identity.subscribed_at) events.push({ at: identity.subscribed_at, kind: 'subscribe', title: 'Followed the official account', detail: '', merchantId: null });
  if (identity.unsubscribed_at) events.push({ at: identity.unsubscribed_at, kind: 'subscribe', title: 'Unfollowed the official account', detail: '', merchantId: null });
  return events;
}

export interface TimelinePage {
  events: TimelineEvent[];
  /** The cursor of the next (older) page: events strictly before this instant. */
  next: Date | null;
}

/**
 * Newest first, about `limit`, all before `before`. Every source was asked for `limit`
 * events, so the page is complete. A page never ends inside a group of events of the same
 * millisecond (the cursor could not split it): such a group moves whole to the next page,
 * or, when it alone fills the page, is shown whole on this one.
 */
export function mergePage(sources: TimelineEvent[][], before: Date, limit: number): TimelinePage {
  const all = sources
    .flat()
    .filter((e) => e.at.getTime() < before.getTime())
    .sort((a, b) => b.at.getTime() - a.at.getTime());
  if (all.length <= limit) return { events: all, next: null };
  const boundary = all[limit]!.at.getTime();
  const kept = all.slice(0, limit).filter((e) => e.at.getTime() !== boundary);
  if (kept.length === limit) return { events: kept, next: kept[limit - 1]!.at };
  // The boundary group is cut: newer events now, the whole group on the next page.
  if (kept.length > 0) return { events: kept, next: new Date(boundary + 1) };
  const group = all.filter((e) => e.at.getTime() === boundary);
  return { events: group, next: all.length > group.length ? new Date(boundary) : null };
}

export interface TimelineQuery {
  identity: AdminIdentityRow;
  scope: Scope;
  /** The identity's official account serves only the scope's merchant: its unrouted messages are the merchant's too. */
  accountIsOwn: boolean;
  before: Date;
  limit: number;
}

export async function loadTimeline(q: Queryable, t: TimelineQuery): Promise<TimelinePage> {
  const { identity, scope, before, limit } = t;
  const [audit, logins, activity, notices] = await Promise.all([
    recentAuditFor(q, scope, { identityId: identity.id, to: before }, limit),
    loginsOf(q, scope, { identityId: identity.id, before, limit }),
    activityOf(q, { appId: identity.app_id, openid: identity.openid, merchantId: scope.merchantId, accountIsOwn: t.accountIsOwn, before, limit }),
    listNoticeDeliveries(q, scope, { identityId: identity.id, to: before, limit }),
  ]);
  return mergePage([audit.map(fromAudit), logins.map(fromLogin), activity.map(fromActivity), notices.map(fromNotice), fromIdentity(identity)], before, limit);
}
