import { describe, expect, it } from 'vitest';
import { assertMerchant, can, scopeOf, scopeSql, type Permission, type Principal, type Role } from './policy.ts';

const who = (role: Role, merchantId: string | null = null): Principal => ({ adminId: 'a', email: 'a@x', role, merchantId, sessionId: 's' });
const perms: Permission[] = ['view', 'export', 'bindings.write', 'deliveries.retry', 'merchants.write', 'accounts.write', 'keys.manage', 'admins.manage', 'audit.verify'];
const allowed = (p: Principal) => perms.filter((x) => can(p, x));

describe('admin policy (ASVS 8.2.1, 8.4.1)', () => {
  it('When roles are compared, then viewer < operator (link, unlink, retry) < admin (config, keys, admins)', () => {
    expect(allowed(who('viewer'))).toEqual(['view', 'export', 'audit.verify']);
    expect(allowed(who('operator'))).toEqual(['view', 'export', 'bindings.write', 'deliveries.retry', 'audit.verify']);
    expect(allowed(who('admin'))).toEqual(perms);
  });

  it('When an account is scoped to one merchant, then it loses everything that spans merchants, whatever its role', () => {
    expect(allowed(who('admin', 'card'))).toEqual(['view', 'export', 'bindings.write', 'deliveries.retry', 'merchants.write']);
  });

  it('When an object belongs to another merchant, then a scoped account is refused with 403 and an unscoped one is not', () => {
    expect(() => assertMerchant(who('operator', 'power'), 'card')).toThrow(expect.objectContaining({ status: 403 }));
    expect(() => assertMerchant(who('operator', 'power'), null)).toThrow(expect.objectContaining({ status: 403 }));
    expect(() => assertMerchant(who('viewer'), 'card')).not.toThrow();
  });

  it('When SQL is scoped, then a scoped account gets a parameterised merchant condition and an unscoped one none', () => {
    const params: unknown[] = ['x'];
    expect(scopeSql(scopeOf(who('viewer', 'card')), 'b.merchant_id', params)).toBe('b.merchant_id = $2');
    expect(params).toEqual(['x', 'card']);
    expect(scopeSql(scopeOf(who('admin')), 'b.merchant_id', params)).toBe('TRUE');
  });
});
