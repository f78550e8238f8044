/**
 * Admin single sign-on against a real OpenID Provider (oidc-provider, in-process on
 * loopback): code + PKCE + nonce + state through linking's openid-client connector; the
 * email claim must name an existing admin account (no account is ever made by SSO).
 */
import type { Server } from 'node:http';
import type Koa from 'koa';
import Provider from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminFeature } from '../../src/admin/admin.routes.ts';
import { createApp } from '../../src/app.ts';
import { freePort } from '../helpers/app.ts';
import { Client, makeAdmin, START_TIMEOUT, startAdminApp, type AdminTestApp } from './helpers.ts';

describe('admin single sign-on', { timeout: 60_000 }, () => {
  let app: AdminTestApp;
  let idp: Server;
  let ssoApp: Server;
  let idpBase: string;
  let ssoBase: string;
  let who = '';

  beforeAll(async () => {
    app = await startAdminApp();
    const idpPort = await freePort();
    idpBase = `http://127.0.0.1:${idpPort}`;
    const provider = new Provider(idpBase, {
      clients: [{ client_id: 'wxbridge-admin', client_secret: 'sso-client-secret-0123456789', redirect_uris: [`${app.config.publicUrl}/admin/sso/callback`], grant_types: ['authorization_code'], response_types: ['code'] }],
      claims: { openid: ['sub'], email: ['email', 'email_verified'] },
      conformIdTokenClaims: false,
      findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id, email: id, email_verified: true }) }),
      features: { devInteractions: { enabled: false } },
      interactions: { url: (_ctx, i) => `/interaction/${i.uid}` },
      cookies: { keys: ['sso-test-cookie-key'] },
    });
    // The "company login": whoever the test says, at once, with consent to openid + email.
    provider.use(async (ctx, next) => {
      if (!ctx.path.startsWith('/interaction/')) return next();
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      const grant = new provider.Grant({ accountId: who, clientId: String(details.params.client_id) });
      grant.addOIDCScope('openid email');
      const grantId = await grant.save();
      ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, { login: { accountId: who }, consent: { grantId } }, { mergeWithLastSubmission: false }));
    });
    idp = provider.listen(idpPort);
    // The same deployment's admin feature, with SSO configured, served on a port of its own.
    const feature = createAdminFeature(app.deps, {}, { sso: { issuer: idpBase, clientId: 'wxbridge-admin', clientSecret: 'sso-client-secret-0123456789', label: 'Corp SSO' } });
    const koa: Koa = createApp({ ...app.deps, features: [feature], mounts: [] });
    const port = await freePort();
    ssoBase = `http://127.0.0.1:${port}`;
    ssoApp = koa.listen(port);
  }, START_TIMEOUT);
  afterAll(async () => {
    ssoApp?.close();
    idp?.close();
    await app?.stop();
  });

  /** Runs the whole round trip as a browser would, across the two origins. */
  async function ssoSignIn(): Promise<{ admin: Client; callback: Awaited<ReturnType<Client['get']>> }> {
    const admin = new Client(ssoBase);
    const user = new Client(idpBase);
    expect((await admin.get('/admin/login')).text).toContain('Sign in with Corp SSO');
    let r = await admin.get('/admin/sso?next=%2Fadmin%2Fbindings');
    expect(r.status).toBe(302);
    let at = new URL(r.location!);
    expect(at.searchParams.get('code_challenge_method')).toBe('S256');
    expect(at.searchParams.get('nonce')).toBeTruthy();
    while (at.origin === idpBase) {
      r = await user.get(at.pathname + at.search);
      at = new URL(r.location!, idpBase);
    }
    expect(at.pathname).toBe('/admin/sso/callback');
    return { admin, callback: await admin.get(at.pathname + at.search) };
  }

  it('When a known admin signs in at the company IdP, then a session opens without the local password and the sign-in is audited', async () => {
    const a = await makeAdmin(app, { role: 'viewer' });
    who = a.email;
    const { admin, callback } = await ssoSignIn();
    expect(callback.status).toBe(200);
    expect(callback.text).toContain('http-equiv="refresh" content="0;url=/admin/bindings"');
    expect((await admin.get('/admin/bindings')).status).toBe(200);
    const row = (await app.deps.db.query<{ detail: Record<string, unknown> }>(`SELECT detail FROM audit_log WHERE actor = $1 AND action = 'admin.signed_in'`, [`admin:${a.id}`])).rows[0];
    expect(row?.detail.method).toBe('sso');
  });

  it('When the IdP vouches for someone with no admin account here, then no session opens', async () => {
    who = 'stranger@corp.example';
    const { admin, callback } = await ssoSignIn();
    expect(callback.status).toBe(401);
    expect(callback.text).toContain('no admin account for you here');
    expect((await admin.get('/admin')).status).toBe(303);
    expect((await app.deps.db.query(`SELECT 1 FROM admin_accounts WHERE email = 'stranger@corp.example'`)).rowCount).toBe(0);
  });

  it('When the callback arrives without the browser’s flow cookie (another browser, or a replay), then it is refused', async () => {
    const a = await makeAdmin(app, { role: 'viewer' });
    who = a.email;
    const { callback } = await ssoSignIn();
    expect(callback.status).toBe(200);
    const cb = new URL(/url=([^"]+)"/.exec(callback.text)![1]!, ssoBase);
    expect(cb.pathname).toBe('/admin/bindings');
    const stranger = new Client(ssoBase);
    const again = await stranger.get(`/admin/sso/callback?code=x&state=y&iss=${encodeURIComponent(idpBase)}`);
    expect(again.status).toBe(401);
    expect(again.text).toContain('took too long');
  });
});
