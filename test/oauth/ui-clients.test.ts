/**
 * OAuth clients made in the admin UI (table admin_clients; DESIGN.md "objects made in the
 * admin UI live beside it"): made through the admin service, then used as a merchant would,
 * with openid-client and plain HTTP, at /oauth2/authorize, /oauth2/token, introspection
 * (RFC 7662) and revocation (RFC 7009). Their secrets are stored hashed; an edit, a new
 * secret, disabling or deleting reaches the registry within its 2 s cache, with no restart.
 */
import * as client from 'openid-client';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as Q from '../../src/admin/clients.queries.ts';
import { createAdminServices, type AdminServices } from '../../src/admin/services.ts';
import { createClientRegistry } from '../../src/oauth/clients.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, freshCard } from '../linking/helpers.ts';
import { journey } from './journey.ts';
import { pkce, UserAgent } from './user-agent.ts';

let app: TestApp;
let admin: AdminServices;
const who = { actor: 'system:test', source: 'test' };
const insecure = { execute: [client.allowInsecureRequests] }; // loopback http only

beforeAll(async () => {
  app = await startTestApp();
  const d = app.deps;
  admin = createAdminServices({ config: d.config, db: d.db, kv: d.kv, log: pino({ level: 'silent' }), now: d.now, secrets: d.secrets });
}, 180_000);
afterAll(async () => {
  await app?.stop();
});

let seq = 0;
async function makeClient(input: Partial<Parameters<AdminServices['clients']['create']>[0]['input']> = {}): Promise<{ clientId: string; secret: string }> {
  const clientId = `ui-${process.pid}-${Date.now()}-${++seq}`;
  const { secret } = await admin.clients.create({
    merchantId: 'card',
    clientId,
    input: { grantTypes: ['client_credentials'], redirectUris: [], scopes: ['bindings:read'], accessTokenTtl: 300, ...input },
    who,
  });
  return { clientId, secret };
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

function post(path: string, form: Record<string, string>, authorization?: string): Promise<Response> {
  return fetch(`${app.baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...(authorization ? { authorization } : {}) },
    body: new URLSearchParams(form),
  });
}

const ccToken = (id: string, secret: string) => post('/oauth2/token', { grant_type: 'client_credentials', scope: 'bindings:read' }, basic(id, secret));

/** Polls until `fn` holds; the time it took, to show "a few seconds" holds. */
async function within(ms: number, fn: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await fn()) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not within ${ms} ms`);
}

async function row(clientId: string): Promise<Q.UiClientRow> {
  return (await Q.findUiClient(app.deps.db, clientId))!;
}

describe('a client made in the admin UI, as a backend uses it (RFC 6749 §4.4, RFC 7662, RFC 7009)', () => {
  it('When it is created, then only a scrypt hash of its secret is stored', async () => {
    const { clientId, secret } = await makeClient();
    const stored = (await app.deps.db.query<{ secret_hash: string }>('SELECT secret_hash FROM admin_clients WHERE client_id = $1', [clientId])).rows[0]!.secret_hash;
    expect(stored).toMatch(/^scrypt\$/);
    expect(stored).not.toContain(secret);
  });

  it('When it asks for a token with client_secret_basic or _post, then it gets one that works on the merchant API, introspects and revokes', async () => {
    const { clientId, secret } = await makeClient();
    const r = await ccToken(clientId, secret);
    expect(r.status).toBe(200);
    const { access_token } = (await r.json()) as { access_token: string };
    const viaPost = await post('/oauth2/token', { grant_type: 'client_credentials', client_id: clientId, client_secret: secret });
    expect(viaPost.status).toBe(200);
    const api = await fetch(`${app.baseUrl}/api/v1/bindings?account=nobody`, { headers: { authorization: `Bearer ${access_token}` } });
    expect(api.status).toBe(200);
    const intro = await post('/oauth2/introspect', { token: access_token }, basic(clientId, secret));
    expect(await intro.json()).toMatchObject({ active: true, client_id: clientId });
    expect((await post('/oauth2/revoke', { token: access_token }, basic(clientId, secret))).status).toBe(200);
    expect(await (await post('/oauth2/introspect', { token: access_token }, basic(clientId, secret))).json()).toMatchObject({ active: false });
  });

  it('When the secret is wrong, or a grant it was not given is asked for, then it is refused', async () => {
    const { clientId, secret } = await makeClient();
    const wrong = await ccToken(clientId, `${secret}x`);
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: 'invalid_client' });
    const grant = await post('/oauth2/token', { grant_type: 'refresh_token', refresh_token: 'x' }, basic(clientId, secret));
    expect(grant.status).toBe(400);
    expect(await grant.json()).toMatchObject({ error: 'unauthorized_client' });
  });
});

describe('a client made in the admin UI, as a merchant web app uses it (openid-client)', () => {
  it('When it runs the code flow with PKCE, then the ID token and refresh work for it, and introspection answers it', async () => {
    const redirect_uri = `${app.baseUrl}/demo/app/callback`;
    const { clientId, secret } = await makeClient({ grantTypes: ['authorization_code', 'refresh_token'], redirectUris: [redirect_uri], scopes: ['openid', 'offline_access'] });
    const rp = await client.discovery(new URL(app.baseUrl), clientId, secret, undefined, insecure);
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(rp, {
      redirect_uri,
      scope: 'openid offline_access',
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const callback = await journey(app, new Browser(app.baseUrl), url.href, freshCard());
    const tokens = await client.authorizationCodeGrant(rp, callback, { pkceCodeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
    expect(tokens.claims()!.aud).toBe(clientId);
    const refreshed = await client.refreshTokenGrant(rp, tokens.refresh_token!);
    expect(await client.tokenIntrospection(rp, refreshed.access_token)).toMatchObject({ active: true, client_id: clientId });
    await client.tokenRevocation(rp, refreshed.refresh_token!);
    await expect(client.refreshTokenGrant(rp, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});

describe('changes in the admin UI reach the running server without a restart', () => {
  it('When a client is disabled, then within a few seconds its tokens, authorize requests and API calls stop; enabled again, it works', async () => {
    const redirect = 'https://h5.card.example/ui/callback';
    const { clientId, secret } = await makeClient({ grantTypes: ['authorization_code', 'client_credentials'], redirectUris: [redirect], scopes: ['openid', 'bindings:read'] });
    const { access_token } = (await (await ccToken(clientId, secret)).json()) as { access_token: string };
    const authorizeUrl = `${app.baseUrl}/oauth2/authorize?${new URLSearchParams({ client_id: clientId, redirect_uri: redirect, response_type: 'code', scope: 'openid', code_challenge: pkce().challenge, code_challenge_method: 'S256' })}`;
    expect((await new UserAgent().get(authorizeUrl)).status).toBe(302);
    const current = await row(clientId);
    const input = { grantTypes: current.grant_types, redirectUris: current.redirect_uris, scopes: current.scopes, accessTokenTtl: current.access_token_ttl };

    await admin.clients.update({ client: current, input, disabled: true, who });
    const took = await within(5_000, async () => (await ccToken(clientId, secret)).status === 401);
    console.log(`[ui-clients] a disabled client was refused ${took} ms after the change`);
    const authz = await new UserAgent().get(authorizeUrl);
    expect(authz.status).toBe(400);
    expect(authz.headers.get('location')).toBeNull();
    expect((await fetch(`${app.baseUrl}/api/v1/bindings?account=nobody`, { headers: { authorization: `Bearer ${access_token}` } })).status).toBe(401);
    expect((await post('/oauth2/introspect', { token: access_token }, basic(clientId, secret))).status).toBe(401);

    await admin.clients.update({ client: await row(clientId), input, disabled: false, who });
    await within(5_000, async () => (await ccToken(clientId, secret)).status === 200);
  });

  it('When a client is disabled, then the user access tokens it already holds stop working at userinfo and introspect as inactive', async () => {
    const redirect_uri = `${app.baseUrl}/demo/app/callback`;
    const { clientId, secret } = await makeClient({ grantTypes: ['authorization_code'], redirectUris: [redirect_uri], scopes: ['openid'] });
    const rp = await client.discovery(new URL(app.baseUrl), clientId, secret, undefined, insecure);
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(rp, { redirect_uri, scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier), code_challenge_method: 'S256', state });
    const callback = await journey(app, new Browser(app.baseUrl), url.href, freshCard());
    const { access_token } = await client.authorizationCodeGrant(rp, callback, { pkceCodeVerifier, expectedState: state });
    const userinfo = () => fetch(`${app.baseUrl}/oauth2/userinfo`, { headers: { authorization: `Bearer ${access_token}` } });
    expect((await userinfo()).status).toBe(200);
    // Another client of the same merchant may introspect it: active now.
    const other = await makeClient();
    const introspect = async () => ((await (await post('/oauth2/introspect', { token: access_token }, basic(other.clientId, other.secret))).json()) as { active: boolean }).active;
    expect(await introspect()).toBe(true);

    const current = await row(clientId);
    await admin.clients.update({ client: current, input: { grantTypes: current.grant_types, redirectUris: current.redirect_uris, scopes: current.scopes, accessTokenTtl: current.access_token_ttl }, disabled: true, who });
    await within(5_000, async () => (await userinfo()).status === 401);
    expect(await introspect()).toBe(false);
  });

  it('When a new secret is made, then the old one stops working within a few seconds and the new one works', async () => {
    const { clientId, secret } = await makeClient();
    expect((await ccToken(clientId, secret)).status).toBe(200); // remembered by this instance
    const { secret: fresh } = await admin.clients.newSecret({ client: await row(clientId), who });
    await within(5_000, async () => (await ccToken(clientId, secret)).status === 401);
    expect((await ccToken(clientId, fresh)).status).toBe(200);
  });

  it('When a client row is deleted, then it is unknown within a few seconds', async () => {
    const { clientId, secret } = await makeClient();
    expect((await ccToken(clientId, secret)).status).toBe(200);
    await app.deps.db.query('DELETE FROM admin_clients WHERE client_id = $1', [clientId]);
    await within(5_000, async () => (await ccToken(clientId, secret)).status === 401);
  });

  it('When another instance cached the client, then it keeps it at most its cache time (2 s) and then sees the change', async () => {
    let now = Date.now();
    const other = createClientRegistry(app.config.merchants, { db: app.deps.db, now: () => now });
    const { clientId, secret } = await makeClient();
    const before = await other.get(clientId);
    expect(before?.merchantId).toBe('card');
    expect(await other.checkSecret(before!, secret)).toBe(true);
    const current = await row(clientId);
    await admin.clients.update({ client: current, input: { grantTypes: current.grant_types, redirectUris: [], scopes: ['bindings:read'], accessTokenTtl: 600 }, disabled: true, who });
    now += 1_999;
    expect(await other.get(clientId)).toBeDefined();
    now += 1;
    expect(await other.get(clientId)).toBeUndefined();
    expect(await other.get('no-such-client')).toBeUndefined();
  });
});
