import { describe, expect, it } from 'vitest';
import { adminSsoSchema } from '../config/schema.ts';
import { ssoAccess } from './sso.service.ts';

const base = { issuer: 'https://idp.corp.example', clientId: 'wxbridge', clientSecret: 'secret' };
const known = (id: string) => id === 'card';

describe('admin SSO access mapping', () => {
  it('When no mapping is configured, then the sign-in needs an existing account (no role is given)', () => {
    const cfg = adminSsoSchema.parse(base);
    expect(ssoAccess(cfg, 'Ann@Corp.Example', { email_verified: true }, known)).toEqual({ ok: true, email: 'ann@corp.example', mapped: null });
  });

  it('When the role claim holds several mapped values, then the highest role wins; unmapped values give nothing', () => {
    const cfg = adminSsoSchema.parse({ ...base, roleClaim: 'groups', roles: { ops: 'operator', boss: 'admin', see: 'viewer' } });
    expect(ssoAccess(cfg, 'a@x.example', { groups: ['see', 'boss', 'ops'] }, known)).toMatchObject({ ok: true, mapped: { role: 'admin', merchantId: null } });
    expect(ssoAccess(cfg, 'a@x.example', { groups: 'ops' }, known)).toMatchObject({ ok: true, mapped: { role: 'operator' } });
    expect(ssoAccess(cfg, 'a@x.example', { groups: ['toString', 'constructor', '__proto__'] }, known)).toEqual({ ok: false, reason: 'not_allowed' });
    expect(ssoAccess(cfg, 'a@x.example', {}, known)).toEqual({ ok: false, reason: 'not_allowed' });
  });

  it('When a default role is set, then it applies only without a mapped value, and it can never be admin', () => {
    const cfg = adminSsoSchema.parse({ ...base, roleClaim: 'groups', roles: { boss: 'admin' }, defaultRole: 'viewer' });
    expect(ssoAccess(cfg, 'a@x.example', { groups: ['nobody'] }, known)).toMatchObject({ ok: true, mapped: { role: 'viewer' } });
    expect(adminSsoSchema.safeParse({ ...base, defaultRole: 'admin' }).success).toBe(false);
  });

  it('When domains are listed, or the email is unverified, or the merchant claim is unknown, then the sign-in is refused', () => {
    const cfg = adminSsoSchema.parse({ ...base, allowedDomains: ['corp.example'], defaultRole: 'operator', merchantClaim: 'm' });
    expect(ssoAccess(cfg, 'a@corp.example', {}, known)).toMatchObject({ ok: true });
    expect(ssoAccess(cfg, 'a@evil-corp.example', {}, known)).toEqual({ ok: false, reason: 'not_allowed' });
    expect(ssoAccess(cfg, 'a@corp.example.evil', {}, known)).toEqual({ ok: false, reason: 'not_allowed' });
    expect(ssoAccess(cfg, 'a@corp.example', { email_verified: false }, known)).toEqual({ ok: false, reason: 'not_allowed' });
    expect(ssoAccess(cfg, 'a@corp.example', { m: 'card' }, known)).toMatchObject({ ok: true, mapped: { merchantId: 'card' } });
    expect(ssoAccess(cfg, 'a@corp.example', { m: 'power' }, known)).toEqual({ ok: false, reason: 'not_allowed' });
    expect(ssoAccess(cfg, 'a@corp.example', { m: ['card'] }, known)).toEqual({ ok: false, reason: 'not_allowed' });
  });
});
