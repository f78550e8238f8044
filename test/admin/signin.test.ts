/**
 * Admin sign-in, sessions and CSRF over real HTTP (SECURITY.md A7: ASVS V6, V7, 3.5).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultAdminPolicy } from '../../src/admin/settings.ts';
import { totpCode } from '../../src/admin/totp.ts';
import { Client, makeAdmin, nextCode, signIn, startAdminApp, type AdminTestApp, START_TIMEOUT } from './helpers.ts';

describe('admin sign-in', { timeout: 60_000 }, () => {
  let app: AdminTestApp;
  beforeAll(async () => {
    app = await startAdminApp();
  }, START_TIMEOUT);
  afterAll(async () => {
    await app?.stop();
  });

  const auditActions = async (actor: string) =>
    (await app.deps.db.query<{ action: string }>('SELECT action FROM audit_log WHERE actor = $1 ORDER BY id', [actor])).rows.map((r) => r.action);

  it('When demo mode starts on an empty database, then one first admin is made and its one-time password is in the banner only once (ASVS 6.3.2)', async () => {
    const line = app.deps.banner.find((l) => l.includes('one-time password'));
    expect(line).toMatch(/admin@demo\.local\s+one-time password: [A-Za-z0-9_-]{20}/);
    expect(await app.admin.accounts.createFirstDemoAdmin('other@demo.local')).toBeNull();
  });

  it('When the demo admin signs in with the one-time password, then TOTP enrolment and a new password are required before any page', async () => {
    const password = /one-time password: (\S+)/.exec(app.deps.banner.join('\n'))![1]!;
    const c = new Client(app.baseUrl);
    expect((await c.get('/admin')).location).toBe('/admin/login?next=%2Fadmin');
    await c.get('/admin/login');
    const r1 = await c.post('/admin/login', { email: 'admin@demo.local', password });
    expect(r1.status).toBe(303);
    const enrol = await c.follow(r1);
    expect(enrol.text).toContain('Set up two-step verification');
    expect(enrol.text).toContain('data:image/svg+xml;base64,');
    const secret = /id="totp-secret">([A-Z2-7 ]+)</.exec(enrol.text)![1]!.replace(/ /g, '');
    app.clock.advance(30_000);
    const wrong = await c.post('/admin/login/code', { code: '000000' });
    expect(wrong.status).toBe(401);
    const r2 = await c.post('/admin/login/code', { code: totpCode(secret, app.clock.now) });
    expect(r2.status).toBe(303);
    const forced = await c.follow(await c.get('/admin/bindings'));
    expect(forced.text).toContain('one-time password');
    const changed = await c.post('/admin/account/password', { current: password, next: 'a long new pass phrase', confirm: 'a long new pass phrase' });
    expect(changed.status).toBe(303);
    expect((await c.get('/admin')).status).toBe(200);
    const id = (await app.deps.db.query<{ id: string }>(`SELECT id FROM admin_accounts WHERE email = 'admin@demo.local'`)).rows[0]!.id;
    expect(await auditActions(`admin:${id}`)).toEqual(['admin.sign_in_failed', 'admin.totp_enrolled', 'admin.signed_in', 'admin.password_changed']);
  });

  it('When a password is wrong five times, then the sign-in locks, even for the right password, and the lockout is audited', async () => {
    const a = await makeAdmin(app, { role: 'viewer' });
    const c = new Client(app.baseUrl);
    await c.get('/admin/login');
    for (let i = 0; i < defaultAdminPolicy.lockoutThreshold - 1; i++) expect((await c.post('/admin/login', { email: a.email, password: 'wrong wrong wrong' })).status).toBe(401);
    const fifth = await c.post('/admin/login', { email: a.email, password: 'wrong wrong wrong' });
    expect(fifth.status).toBe(429);
    const right = await c.post('/admin/login', { email: a.email, password: a.password });
    expect(right.status).toBe(429);
    expect(right.text).toContain('locked');
    expect(await auditActions(`admin:${a.id}`)).toContain('admin.locked_out');
    // Unknown addresses lock the same way: the lockout says nothing about who exists.
    for (let i = 0; i < defaultAdminPolicy.lockoutThreshold; i++) await c.post('/admin/login', { email: 'nobody@example.com', password: 'x' });
    expect((await c.post('/admin/login', { email: 'nobody@example.com', password: 'x' })).status).toBe(429);
  });

  it('When a form is posted without its CSRF token or from another origin, then it is refused with 403 (ASVS 3.5.1)', async () => {
    const a = await makeAdmin(app, { role: 'admin' });
    const c = await signIn(app, a);
    await c.get('/admin/account');
    expect((await c.request('POST', '/admin/logout', { _csrf: 'forged' })).status).toBe(403);
    expect((await c.request('POST', '/admin/logout', {})).status).toBe(403);
    expect((await c.request('POST', '/admin/logout', { _csrf: c.csrf }, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await c.get('/admin/account')).status).toBe(200);
  });

  it('When a session is idle too long or past its absolute limit, then it ends (ASVS 7.3.1, 7.3.2)', async () => {
    const a = await makeAdmin(app, { role: 'viewer' });
    const c = await signIn(app, a);
    expect((await c.get('/admin')).status).toBe(200);
    app.clock.advance(defaultAdminPolicy.idleMs + 1000);
    expect((await c.get('/admin')).status).toBe(303);
    const d = await signIn(app, a);
    for (let t = 0; t < defaultAdminPolicy.absoluteMs; t += defaultAdminPolicy.idleMs / 2) {
      app.clock.advance(defaultAdminPolicy.idleMs / 2);
      await d.get('/admin/account');
    }
    expect((await d.get('/admin/account')).location).toContain('/admin/login');
  });

  it('When an admin signs out or ends a session from the list, then that cookie no longer works (ASVS 7.4.1, 7.4.5)', async () => {
    const a = await makeAdmin(app, { role: 'viewer' });
    const phone = await signIn(app, a);
    const laptop = await signIn(app, a);
    const page = await laptop.get('/admin/account');
    const ids = [...page.text.matchAll(/\/admin\/account\/sessions\/([0-9a-f-]{36})\/revoke/g)].map((m) => m[1]!);
    expect(ids).toHaveLength(1);
    expect((await laptop.post(`/admin/account/sessions/${ids[0]}/revoke`)).status).toBe(303);
    expect((await phone.get('/admin')).status).toBe(303);
    await laptop.get('/admin');
    const saved = new Map(laptop.cookies);
    await laptop.post('/admin/logout');
    laptop.cookies = saved;
    expect((await laptop.get('/admin')).location).toContain('/admin/login');
  });

  it('When a TOTP code is used twice, then the second sign-in with it is refused (RFC 6238 §5.2)', async () => {
    const a = await makeAdmin(app, { role: 'viewer' });
    const code = nextCode(app, a.totpSecret);
    const first = new Client(app.baseUrl);
    await first.get('/admin/login');
    await first.follow(await first.post('/admin/login', { email: a.email, password: a.password }));
    expect((await first.post('/admin/login/code', { code })).status).toBe(303);
    const second = new Client(app.baseUrl);
    await second.get('/admin/login');
    await second.follow(await second.post('/admin/login', { email: a.email, password: a.password }));
    expect((await second.post('/admin/login/code', { code })).status).toBe(401);
  });
});
