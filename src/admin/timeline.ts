/**
 * An identity's timeline: what happened to one WeChat user, newest first, merged from
 * the audit log (links, unlinks, refused links, failed proofs) and the identity row's own
 * timestamps (first seen, last login, subscribe, unsubscribe). Messages and notices are
 * metadata only (type and status, never content).
 */
import type { AuditRow } from './audit.queries.ts';
import type { AdminIdentityRow } from './identity.queries.ts';

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
};

function fromAudit(a: AuditRow): TimelineEvent {
  const [kind, title] = titles[a.action] ?? ['other', a.action];
  const detail = Object.entries(a.detail)
    .filter(([k]) => k !== 'note')
    .map(([k, v]) => `${k}: ${String(v)}`)
    .join(' · ');
  return {
    at: a.at,
    kind,
    title,
    detail: [a.actor.startsWith('admin:') ? 'by an admin' : '', detail].filter(Boolean).join(' — '),
    merchantId: a.merchant_id,
    href: a.binding_id ? `/admin/bindings/${a.binding_id}` : undefined,
  };
}

export function buildTimeline(identity: AdminIdentityRow, audit: AuditRow[], extra: TimelineEvent[] = [], limit = 100): TimelineEvent[] {
  const events: TimelineEvent[] = audit.map(fromAudit);
  events.push({ at: identity.created_at, kind: 'other', title: 'First seen', detail: `official account ${identity.app_id}`, merchantId: null });
  if (identity.last_login_at) events.push({ at: identity.last_login_at, kind: 'login', title: 'Last WeChat login', detail: '', merchantId: null });
  if (identity.subscribed_at) events.push({ at: identity.subscribed_at, kind: 'subscribe', title: 'Followed the official account', detail: '', merchantId: null });
  if (identity.unsubscribed_at) events.push({ at: identity.unsubscribed_at, kind: 'subscribe', title: 'Unfollowed the official account', detail: '', merchantId: null });
  events.push(...extra);
  return events.sort((a, b) => b.at.getTime() - a.at.getTime()).slice(0, limit);
}
