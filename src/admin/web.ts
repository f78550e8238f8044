/**
 * What the admin routes are given (narrow, passed in: STYLE.md rule 2), and the ports to
 * other features' services. Actions always go through the owning feature's service
 * (unlink = linking's revokeBinding, rotate = oauth's keys service, ...); a port that is
 * not wired yet leaves its page read-only with a note, never a copy of their logic.
 */
import type { Logger } from 'pino';
import type { AppConfig } from '../config/index.ts';
import type { CookiePolicy } from '../http/cookies.ts';
import type { Csrf } from '../http/csrf.ts';
import type { Views } from '../http/views.ts';
import type { Binding, LinkRequest, LinkResult } from '../linking/types.ts';
import type { NoticesService } from '../notices/index.ts';
import type { Db } from '../store/db.ts';
import type { Kv } from '../store/kv.ts';
import type { AccountsService } from './accounts.service.ts';
import type { AdminAudit } from './audit.service.ts';
import type { ClientsService } from './clients.service.ts';
import type { Permission } from './policy.ts';
import type { SessionsService } from './sessions.service.ts';
import type { AdminPolicy } from './settings.ts';
import type { SignInService } from './signin.service.ts';

export interface KeyInfoPort {
  kid: string;
  alg: string;
  state: 'next' | 'current' | 'previous';
  publishedAt: Date;
  activatedAt: Date | null;
  retiredAt: Date | null;
  removeAfter: Date | null;
}

export interface AdminPorts {
  linking?: {
    revokeBinding(p: { bindingId: string; merchantId: string; actor: string; reason: string; source?: string }): Promise<Binding>;
    link(req: LinkRequest): Promise<LinkResult>;
  };
  keys?: {
    list(): KeyInfoPort[];
    rotate(opts?: { force?: boolean; emergency?: boolean }): Promise<{ outcome: 'published' | 'promoted'; promotableAt?: Date }>;
    remove(kid: string): Promise<void>;
  };
  /** Webhook events: queue a finished one (abandoned = retry, sent = replay) again with a fresh window. */
  webhooks?: { replay(p: { eventId: string; merchantId?: string }): Promise<'replayed' | 'not_found' | 'in_progress'> };
  /** Notice deliveries: retry a failed one, or an `unknown` one when a person accepts the duplicate risk. */
  notices?: Pick<NoticesService, 'retryDelivery'>;
}

export interface NavItem {
  href: string;
  label: string;
  icon: string;
  perm: Permission;
}

export interface AdminWeb {
  config: AppConfig;
  db: Db;
  /** Read-only here: the call counters the dashboard shows (keyspace `wechat.callCounter`). */
  kv: Kv;
  log: Logger;
  now: () => number;
  views: Views;
  csrf: Csrf;
  cookies: CookiePolicy;
  policy: AdminPolicy;
  sessions: SessionsService;
  signin: SignInService;
  accounts: AccountsService;
  clients: ClientsService;
  audit: AdminAudit;
  ports: AdminPorts;
  nav: readonly NavItem[];
  /** Set when single sign-on is configured: the label of its button on the sign-in page. */
  ssoLabel?: string;
}

export const adminNav: readonly NavItem[] = [
  { href: '/admin', label: 'Dashboard', icon: '◧', perm: 'view' },
  { href: '/admin/search', label: 'Search', icon: '⌕', perm: 'view' },
  { href: '/admin/bindings', label: 'Bindings', icon: '⇄', perm: 'view' },
  { href: '/admin/deliveries', label: 'Notices & webhooks', icon: '✉', perm: 'view' },
  { href: '/admin/audit', label: 'Audit log', icon: '☰', perm: 'view' },
  { href: '/admin/merchants', label: 'Merchants', icon: '▦', perm: 'view' },
  { href: '/admin/keys', label: 'Signing keys', icon: '⚷', perm: 'keys.manage' },
  { href: '/admin/admins', label: 'Admins', icon: '⚇', perm: 'admins.manage' },
  { href: '/admin/account', label: 'My account', icon: '◉', perm: 'view' },
];
