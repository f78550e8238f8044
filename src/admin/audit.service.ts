/**
 * Every admin action goes into the same hash-chained audit_log as linking's events
 * (issue 8: who, what, before/after, from where), through linking's `appendAudit`, so
 * one chain and one lock cover everything. `actor` is `admin:<id>`; `source` says where
 * from (`admin <ip>`). Before/after are flattened into the detail as `before.x` /
 * `after.x`: the detail column holds flat values only, and secrets never reach it.
 */
import { appendAudit, verifyAuditChain, type AuditAction, type ChainReport } from '../linking/audit.queries.ts';
import type { Db, Queryable } from '../store/db.ts';

export type AdminAction =
  | 'admin.signed_in'
  | 'admin.sign_in_failed'
  | 'admin.locked_out'
  | 'admin.signed_out'
  | 'admin.reauthenticated'
  | 'admin.totp_enrolled'
  | 'admin.password_changed'
  | 'admin.session_revoked'
  | 'admin.created'
  | 'admin.access_changed'
  | 'admin.totp_reset'
  | 'admin.access_denied'
  | 'audit.verified'
  | 'audit.exported'
  | 'bindings.exported'
  | 'bindings.imported'
  | 'keys.rotated'
  | 'keys.removed'
  | 'deliveries.retried'
  | 'merchants.changed'
  | 'clients.changed';

type Flat = Record<string, string | number | boolean | null>;

export interface AdminAuditEntry {
  action: AdminAction;
  merchantId?: string | null;
  identityId?: string | null;
  bindingId?: string | null;
  detail?: Flat;
  before?: Flat;
  after?: Flat;
}

/** Who acts and from where; made once per request by the routes. */
export interface ActorRef {
  actor: string;
  source: string;
}

export const adminActor = (adminId: string, ip: string | null): ActorRef => ({ actor: `admin:${adminId}`, source: `admin ${ip ?? '-'}` });

export interface AdminAudit {
  /** Appends in `q` when given (the caller's transaction), else in a short one of its own. */
  record(who: ActorRef, e: AdminAuditEntry, q?: Queryable): Promise<void>;
  verifyChain(): Promise<ChainReport>;
}

/** Control characters become spaces: audit text is shown, exported and logged (ASVS 16.4.1, log injection). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
export const stripControl = (s: string): string => s.replace(/[\u0000-\u001f\u007f]/g, ' ');

const clean = (v: string | number | boolean | null): string | number | boolean | null => (typeof v === 'string' ? stripControl(v).slice(0, 500) : v);

export function flattenDetail(e: AdminAuditEntry): Flat {
  const out: Flat = {};
  for (const [k, v] of Object.entries(e.detail ?? {})) out[k] = clean(v);
  for (const [k, v] of Object.entries(e.before ?? {})) out[`before.${k}`] = clean(v);
  for (const [k, v] of Object.entries(e.after ?? {})) out[`after.${k}`] = clean(v);
  return out;
}

export function createAdminAudit(deps: { db: Db; now: () => number }): AdminAudit {
  const append = (q: Queryable, who: ActorRef, e: AdminAuditEntry) =>
    appendAudit(
      q,
      {
        actor: who.actor,
        // TODO(#8): linking's AuditAction lists only its own actions; admin actions share the
        // chain by design, so the union should widen to AuditAction | AdminAction.
        action: e.action as unknown as AuditAction,
        merchantId: e.merchantId ?? null,
        identityId: e.identityId ?? null,
        bindingId: e.bindingId ?? null,
        source: who.source,
        detail: flattenDetail(e),
      },
      new Date(deps.now()),
    );
  return {
    async record(who, e, q) {
      if (q) await append(q, who, e);
      else await deps.db.transaction((tx) => append(tx, who, e));
    },
    verifyChain: () => verifyAuditChain(deps.db),
  };
}
