/**
 * Who may do what in the admin UI: the one place roles and merchant scoping are decided
 * (SECURITY.md A7, ASVS 8.2.1 function level, 8.2.2 object level, 8.3.1 on the server,
 * 8.4.1 across tenants). Every admin handler asks `assertCan` before acting; every admin
 * query takes a `Scope` made only here, so a query cannot be written that forgets the
 * merchant filter, and a merchant-scoped account sees nothing of another merchant in
 * lists, search, detail pages or exports.
 */
import { AppError } from '../http/errors.ts';

export const roles = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof roles)[number];

/** The signed-in admin, as loaded from the session on every request (8.3.2: no caching of rights). */
export interface Principal {
  readonly adminId: string;
  readonly email: string;
  readonly role: Role;
  /** Set: this account sees and acts on this merchant only. */
  readonly merchantId: string | null;
  readonly sessionId: string;
}

export type Permission =
  | 'view'
  | 'export'
  | 'bindings.write' // link, unlink, import
  | 'deliveries.retry' // notices and webhooks: retry, replay
  | 'merchants.write' // a merchant's config and clients
  | 'merchants.create' // new merchants: a scoped account cannot make one
  | 'accounts.write' // official accounts (shared by merchants)
  | 'keys.manage' // signing keys are global
  | 'admins.manage'
  | 'audit.verify';

const rank: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** The least role each permission needs, and whether it touches every merchant at once. */
const rules: Record<Permission, { role: Role; global: boolean }> = {
  view: { role: 'viewer', global: false },
  export: { role: 'viewer', global: false },
  'bindings.write': { role: 'operator', global: false },
  'deliveries.retry': { role: 'operator', global: false },
  'merchants.write': { role: 'admin', global: false },
  'merchants.create': { role: 'admin', global: true },
  // Objects every merchant shares: a scoped account must not change (or even judge) them.
  'accounts.write': { role: 'admin', global: true },
  'keys.manage': { role: 'admin', global: true },
  'admins.manage': { role: 'admin', global: true },
  // The chain spans all merchants; its first broken row may be another merchant's.
  'audit.verify': { role: 'viewer', global: true },
};

export function can(p: Principal, perm: Permission): boolean {
  const rule = rules[perm];
  if (rank[p.role] < rank[rule.role]) return false;
  return !(rule.global && p.merchantId !== null);
}

/** Function-level check (8.2.1). Refusals are logged by the error handler and audited by the caller. */
export function assertCan(p: Principal, perm: Permission): void {
  if (!can(p, perm)) throw new AppError('request.forbidden', 'Your role does not allow this.', { perm, role: p.role });
}

/** Object-level check (8.2.2): the object belongs to a merchant this account may see. */
export function assertMerchant(p: Principal, merchantId: string | null | undefined): void {
  if (p.merchantId !== null && merchantId !== p.merchantId)
    throw new AppError('request.forbidden', 'This belongs to another merchant.', { scope: p.merchantId });
}

export function canSeeMerchant(p: Principal, merchantId: string | null | undefined): boolean {
  return p.merchantId === null || merchantId === p.merchantId;
}

declare const scopeBrand: unique symbol;
/** The merchant filter of one principal; only `scopeOf` makes one. `null` = every merchant. */
export interface Scope {
  readonly merchantId: string | null;
  readonly [scopeBrand]: true;
}

export function scopeOf(p: Principal): Scope {
  return { merchantId: p.merchantId } as Scope;
}

/** The unscoped view, for the CLI and start-up code that acts as the system. */
export const systemScope = { merchantId: null } as Scope;

/**
 * A SQL condition limiting `column` to the scope, with its parameter pushed on `params`.
 * Unscoped: `TRUE`. Rows whose merchant is NULL (sign-ins, key rotations) are never
 * visible to a scoped account.
 */
export function scopeSql(scope: Scope, column: string, params: unknown[]): string {
  if (scope.merchantId === null) return 'TRUE';
  return `${column} = $${params.push(scope.merchantId)}`;
}

export function inScope(scope: Scope, merchantId: string | null | undefined): boolean {
  return scope.merchantId === null || merchantId === scope.merchantId;
}
