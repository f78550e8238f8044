/**
 * Admin single sign-on against a real OpenID Provider (oidc-provider, in-process on
 * loopback): code + PKCE + nonce + state through linking's openid-client connector.
 * The main app gets SSO from its config file (`admin.sso`, wired in deps.ts) with a role
 * mapping: the ID token's `groups` give the role, `wx_merchant` the merchant scope, only
 * corp.example addresses. A second admin feature on the same deployment has SSO without a
 * mapping: then only accounts an admin made get in, with their own role.
 */
import type { Server } from 'node:http';
import type Koa from 'koa';
import Provider from 'oidc-provider';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminFeature } from '../../src/admin/admin.routes.ts';
import { createAdminServices } from '../../src/admin/services.ts';
import { createApp } from '../../src/app.ts';
import { createLiveConfig } from '../../src/config/overlay.ts';
import { createConfigSync } from '../../src/config/overlay.sync.ts';
import { adminSsoSchema } from '../../src/config/schema.ts';
import { demoConfigFile, freePort, startTestApp } from '../helpers/app.ts';
import { Client, createClock, makeAdmin, START_TIMEOUT, type AdminTestApp } from './helpers.ts';

const SECRET = 'sso-client-secret-0123456789';

describe('admin single sign-on', { timeout: 60_000 }, () => {
  let app: AdminTestApp;
  let idp: Server;
  let plainApp: Server;
  let idpBase: string;
  let plainBase: string;
  /** Who the "company login" signs in next, and the claims their ID token carries. */
  let who = '';
  let claims: Record<string, unknown> = {};

  beforeAll(async () => {
    const [idpPort, appPort] = [await freePort(), await freePort()];
    idpBase = `http://127.0.0.1:${idpPort}`;
    const publicUrl = `http://localhost:${appPort}`;
    const provider = new Provider(idpBase, {
      clients: [{ client_id: 'wxbridge-admin', client_secret: SECRET, redirect_uris: [`${publicUrl}/admin/sso/callback`], grant_types: ['authorization_code'], response_types: ['code'] }],
      claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups', 'wx_merchant'] },
      conformIdTokenClaims: false,
      findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id, email: id, email_verified: true, ...claims }) }),
      features: { devInteractions: { enabled: false } },
      interactions: { url: (_ctx, i) => `/interaction/${i.uid}` },
      cookies: { keys: ['sso-test-cookie-key'] },
    });
    // The "company login": whoever the test says, at once, with consent to what was asked.
    provider.use(async (ctx, next) => {
      if (!ctx.path.startsWith('/interaction/')) return next();
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      const grant = new provider.Grant({ accountId: who, clientId: String(details.params.client_id) });
      grant.addOIDCScope(String(details.params.scope));
      const grantId = await grant.save();
      ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, { login: { accountId: who }, consent: { grantId } }, { mergeWithLastSubmission: false }));
    });
    idp = provider.listen(idpPort);

    // The deployment: SSO comes from its config file.
    const sso = { issuer: idpBase, clientId: 'wxbridge-admin', clientSecret: '${SSO_SECRET}', label: 'Corp SSO', scope: 'openid email groups', allowedDomains: ['corp.example'], roleClaim: 'groups', roles: { 'wx-admins': 'admin', 'wx-ops': 'operator' }, merchantClaim: 'wx_merchant' };
    const file = demoConfigFile(publicUrl, { admin: { sso } });
    const clock = createClock();
    const started = await startTestApp({ env: { PORT: String(appPort), PUBLIC_URL: publicUrl, BRIDGE_CONFIG: file, SSO_SECRET: SECRET }, overrides: { now: () => clock.now } });
    const d = started.deps;
    app = Object.assign(started, { clock, admin: createAdminServices({ config: d.config, db: d.db, kv: d.kv, log: pino({ level: 'silent' }), now: d.now, secrets: d.secrets }) });

    // The same deployment's admin feature with SSO and no mapping, on a port of its own.
    const configSync = createConfigSync({ db: d.db, secrets: d.secrets, log: d.log, live: createLiveConfig(d.config) });
    const plain = createAdminFeature(d, {}, { sso: adminSsoSchema.parse({ issuer: idpBase, clientId: 'wxbridge-admin', clientSecret: SECRET, label: 'Corp SSO' }), configSync });
    const koa: Koa = createApp({ ...d, features: [plain], mounts: [] });
    const port = await freePort();
    plainBase = `http://127.0.0.1:${port}`;
    plainApp = koa.listen(port);
  }, START_TIMEOUT);
  afterAll(async () => {
    plainApp?.close();
    idp?.close();
    await app?.stop();
  });

  /** From `start` on our side through the provider and back, as a browser would, across the origins. */
  async function roundTrip(admin: Client, start: string): Promise<{ callback: Awaited<ReturnType<Client['get']>>; asked: URL }> {
    const user = new Client(idpBase);
    let r = await admin.get(start);
    expect(r.status).toBe(302);
    const asked = new URL(r.location!);
    expect(asked.searchParams.get('code_challenge_method')).toBe('S256');
    expect(asked.searchParams.get('nonce')).toBeTruthy();
    expect(asked.searchParams.get('state')).toBeTruthy();
    let at = asked;
    while (at.origin === idpBase) {
      r = await user.get(at.pathname + at.search);
      at = new URL(r.location!, idpBase);
    }
    expect(at.pathname).toBe('/admin/sso/callback');
    return { asked, callback: await admin.get(at.pathname + at.search) };
  }

  async function ssoSignIn(base: string): Promise<{ admin: Client; callback: Awaited<ReturnType<Client['get']>> }> {
    const admin = new Client(base);
    expect((await admin.get('/admin/login')).text).toContain('Sign in with Corp SSO');
    return { admin, ...(await roundTrip(admin, '/admin/sso?next=%2Fadmin%2Fbindings')) };
  }

  const accountOf = async (email: string) =>
    (await app.deps.db.query<{ id: string; role: string; merchant_id: string | null; password_hash: string | null }>('SELECT id, role, merchant_id, password_hash FROM admin_accounts WHERE email = $1', [email])).rows[0];

  describe('with a role mapping in the config file', () => {
    it('When someone in the operators group signs in for the first time, then an operator account without a password is made and the session is an operator’s', async () => {
      who = `ops-${Date.now()}@corp.example`;
      claims = { groups: ['staff', 'wx-ops'] };
      const { admin, callback } = await ssoSignIn(app.baseUrl);
      expect(callback.status).toBe(200);
      expect(callback.text).toContain('http-equiv="refresh" content="0;url=/admin/bindings"');
      expect((await admin.get('/admin/bindings')).status).toBe(200);
      // An operator cannot open admin-only pages.
      expect((await admin.get('/admin/admins')).status).toBe(403);
      const row = await accountOf(who);
      expect(row).toMatchObject({ role: 'operator', merchant_id: null, password_hash: null });
      const audit = await app.deps.db.query<{ action: string; detail: Record<string, unknown> }>(`SELECT action, detail FROM audit_log WHERE detail->>'admin' = $1 OR actor = $2 ORDER BY id`, [row!.id, `admin:${row!.id}`]);
      expect(audit.rows.map((x) => x.action)).toEqual(['admin.created', 'admin.signed_in', 'admin.access_denied']);
      expect(audit.rows[1]!.detail.method).toBe('sso');
    });

    it('When the groups change at the company, then the next sign-in follows them: admin, scoped to the merchant the claim names', async () => {
      who = `lead-${Date.now()}@corp.example`;
      claims = { groups: ['wx-ops'] };
      expect((await ssoSignIn(app.baseUrl)).callback.status).toBe(200);
      claims = { groups: ['wx-ops', 'wx-admins'], wx_merchant: 'card' };
      const { admin, callback } = await ssoSignIn(app.baseUrl);
      expect(callback.status).toBe(200);
      expect(await accountOf(who)).toMatchObject({ role: 'admin', merchant_id: 'card' });
      // Scoped: another merchant's page is refused.
      expect((await admin.get('/admin/merchants/card')).status).toBe(200);
      expect((await admin.get('/admin/merchants/power')).status).toBe(403);
    });

    it('When the ID token maps to no role, then no session opens and no account is made (never a default admin)', async () => {
      who = `guest-${Date.now()}@corp.example`;
      claims = { groups: ['staff', 'constructor', '__proto__'] };
      const { admin, callback } = await ssoSignIn(app.baseUrl);
      expect(callback.status).toBe(401);
      expect(callback.text).toContain('not given any role here');
      expect((await admin.get('/admin')).status).toBe(303);
      expect(await accountOf(who)).toBeUndefined();
    });

    it('When the address is outside the allowed domains, or not verified, or names an unknown merchant, then it is refused', async () => {
      for (const [email, c] of [
        [`x-${Date.now()}@elsewhere.example`, { groups: ['wx-admins'] }],
        [`y-${Date.now()}@corp.example`, { groups: ['wx-admins'], email_verified: false }],
        [`z-${Date.now()}@corp.example`, { groups: ['wx-admins'], wx_merchant: 'nope' }],
      ] as const) {
        who = email;
        claims = c;
        expect((await ssoSignIn(app.baseUrl)).callback.status).toBe(401);
        expect(await accountOf(email)).toBeUndefined();
      }
    });

    it('When an admin disabled an SSO account, then the company sign-in does not bring it back', async () => {
      who = `gone-${Date.now()}@corp.example`;
      claims = { groups: ['wx-admins'] };
      expect((await ssoSignIn(app.baseUrl)).callback.status).toBe(200);
      await app.deps.db.query('UPDATE admin_accounts SET disabled_at = now() WHERE email = $1', [who]);
      const { callback } = await ssoSignIn(app.baseUrl);
      expect(callback.status).toBe(401);
      expect(callback.text).toContain('no admin account for you here');
    });
    it('When an SSO admin’s sign-in is no longer recent, then a sensitive page sends it to the provider again (prompt=login) and only the same person confirms it', async () => {
      who = `boss-${Date.now()}@corp.example`;
      claims = { groups: ['wx-admins'] };
      const { admin } = await ssoSignIn(app.baseUrl);
      expect((await admin.get('/admin/merchants/new')).status).toBe(200);
      app.clock.advance(app.admin.policy.reauthMs + 60_000);
      const gate = await admin.get('/admin/merchants/new');
      expect(gate.location).toBe(`/admin/reauth?next=${encodeURIComponent('/admin/merchants/new')}`);
      const page = await admin.get(gate.location!);
      expect(page.text).toContain('Confirm with Corp SSO');
      const start = /href="(\/admin\/sso\/reauth\?next=[^"]+)"/.exec(page.text)![1]!.replace(/&amp;/g, '&');

      // Someone else at the provider cannot confirm this session.
      const boss = who;
      who = `intern-${Date.now()}@corp.example`;
      const wrong = await roundTrip(admin, start);
      expect(wrong.callback.status).toBe(401);
      expect((await admin.get('/admin/merchants/new')).status).toBe(303);

      who = boss;
      const { asked, callback } = await roundTrip(admin, start);
      expect(asked.searchParams.get('prompt')).toBe('login');
      expect(asked.searchParams.get('max_age')).toBe('0');
      expect(callback.status).toBe(200);
      expect(callback.text).toContain('content="0;url=/admin/merchants/new"');
      expect((await admin.get('/admin/merchants/new')).status).toBe(200);
      const id = (await accountOf(boss))!.id;
      const rows = await app.deps.db.query<{ action: string }>(`SELECT action FROM audit_log WHERE actor = $1 AND action IN ('admin.reauthenticated', 'admin.sign_in_failed') ORDER BY id`, [`admin:${id}`]);
      expect(rows.rows.map((r) => r.action)).toEqual(['admin.sign_in_failed', 'admin.reauthenticated']);
    });
  });

  describe('without a role mapping', () => {
    it('When a known admin signs in at the company IdP, then a session opens with the account’s own role', async () => {
      const a = await makeAdmin(app, { role: 'viewer' });
      who = a.email;
      claims = { groups: ['wx-admins'] };
      const { admin, callback } = await ssoSignIn(plainBase);
      expect(callback.status).toBe(200);
      expect((await admin.get('/admin/bindings')).status).toBe(200);
      expect((await accountOf(a.email))?.role).toBe('viewer');
      const row = (await app.deps.db.query<{ detail: Record<string, unknown> }>(`SELECT detail FROM audit_log WHERE actor = $1 AND action = 'admin.signed_in'`, [`admin:${a.id}`])).rows[0];
      expect(row?.detail.method).toBe('sso');
    });

    it('When the IdP vouches for someone with no admin account here, then no session opens', async () => {
      who = 'stranger@corp.example';
      const { admin, callback } = await ssoSignIn(plainBase);
      expect(callback.status).toBe(401);
      expect(callback.text).toContain('no admin account for you here');
      expect((await admin.get('/admin')).status).toBe(303);
      expect(await accountOf('stranger@corp.example')).toBeUndefined();
    });

    it('When the callback arrives without the browser’s flow cookie (another browser, or a replay), then it is refused', async () => {
      const a = await makeAdmin(app, { role: 'viewer' });
      who = a.email;
      const { callback } = await ssoSignIn(plainBase);
      expect(callback.status).toBe(200);
      const stranger = new Client(plainBase);
      const again = await stranger.get(`/admin/sso/callback?code=x&state=y&iss=${encodeURIComponent(idpBase)}`);
      expect(again.status).toBe(401);
      expect(again.text).toContain('took too long');
    });
  });
});
