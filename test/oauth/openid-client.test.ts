/**
 * The whole flow as a merchant runs it, with the real openid-client v6 as the client
 * (STYLE.md: prove the AS conforms), the real linking feature, the demo merchant's verify
 * API and the WeChat sandbox over HTTP: discovery, PKCE, state, nonce, code exchange, ID
 * token and access token validation, userinfo, refresh, introspection, revocation, and an
 * unbinding through the merchant API that stops everything at once (DESIGN.md "Tokens").
 */
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_SECRETS } from '../../src/config/demo.ts';
import { createVerifier } from '../../src/verify/index.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, field, freshCard } from '../linking/helpers.ts';
import { journey } from './journey.ts';

let app: TestApp;
let h5: client.Configuration;
let backend: client.Configuration;
const insecure = { execute: [client.allowInsecureRequests] }; // loopback http only

beforeAll(async () => {
  app = await startTestApp();
  h5 = await client.discovery(new URL(app.baseUrl), 'card-h5', DEMO_SECRETS.cardH5, undefined, insecure);
  backend = await client.discovery(new URL(app.baseUrl), 'card-backend', DEMO_SECRETS.cardBackend, undefined, insecure);
}, 180_000); // an embedded Postgres boots slowly on a busy machine
afterAll(async () => {
  await app?.stop();
});

describe('openid-client v6 as the merchant (RFC 6749, RFC 7636, OIDC Core, RFC 7662, RFC 7009)', () => {
  it('When a merchant app runs the code flow, then every protocol check of openid-client passes and the tokens carry the binding', async () => {
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const redirect_uri = `${app.baseUrl}/demo/app/callback`;
    const url = client.buildAuthorizationUrl(h5, {
      redirect_uri,
      scope: 'openid profile offline_access',
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const card = freshCard();
    const callback = await journey(app, new Browser(app.baseUrl), url.href, card);
    expect(callback.searchParams.get('iss')).toBe(app.config.publicUrl);

    // Code exchange; openid-client validates state, iss (RFC 9207), the ID token (signature via JWKS, iss, aud, nonce, exp).
    const tokens = await client.authorizationCodeGrant(h5, callback, { pkceCodeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
    const id = tokens.claims()!;
    expect(id.aud).toBe('card-h5');
    expect(typeof id.auth_time).toBe('number');

    // The access token, as a merchant backend checks it (wxbridge/verify: pinned alg, iss, aud, typ).
    const verifier = createVerifier({ issuer: app.config.publicUrl, audience: 'card' });
    const at = await verifier.verifyAccessToken(tokens.access_token);
    expect(at).toMatchObject({ sub: id.sub, client_id: 'card-h5', amr: ['verify-api'] });
    expect(at.account).toMatch(/\S/); // the demo bank's account id for this card
    expect(at.binding_id).toMatch(/^[0-9a-f-]{36}$/);

    const info = await client.fetchUserInfo(h5, tokens.access_token, id.sub);
    expect(info).toMatchObject({ sub: id.sub, account: at.account, binding_id: at.binding_id });

    // Refresh rotates; introspection and revocation answer as the RFCs say.
    const refreshed = await client.refreshTokenGrant(h5, tokens.refresh_token!);
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(await client.tokenIntrospection(h5, refreshed.access_token)).toMatchObject({ active: true, client_id: 'card-h5', sub: id.sub, account: at.account });
    await client.tokenRevocation(h5, refreshed.access_token);
    expect(await client.tokenIntrospection(h5, refreshed.access_token)).toMatchObject({ active: false });

    // The merchant unbinds (card cancelled): refresh stops at once, the live access token introspects inactive.
    const third = await client.refreshTokenGrant(h5, refreshed.refresh_token!);
    const cc = await client.clientCredentialsGrant(backend, { scope: 'bindings:write' });
    const revoked = await fetch(`${app.baseUrl}/api/v1/bindings/${at.binding_id}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${cc.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'card cancelled' }),
    });
    expect(revoked.status).toBe(200);
    await expect(client.refreshTokenGrant(h5, third.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await client.tokenIntrospection(h5, third.access_token)).toMatchObject({ active: false });
    await expect(client.fetchUserInfo(h5, third.access_token, id.sub)).rejects.toBeDefined();
  });

  it('When the authorization code is replayed through openid-client, then the token endpoint refuses it (RFC 6749 §4.1.2)', async () => {
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(h5, {
      redirect_uri: `${app.baseUrl}/demo/app/callback`,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      state,
    });
    const callback = await journey(app, new Browser(app.baseUrl), url.href, freshCard());
    const first = await client.authorizationCodeGrant(h5, callback, { pkceCodeVerifier, expectedState: state });
    await expect(client.authorizationCodeGrant(h5, callback, { pkceCodeVerifier, expectedState: state })).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await client.tokenIntrospection(h5, first.access_token)).toMatchObject({ active: false });
  });
});

describe('the demo merchant H5 app (/demo/app)', () => {
  it('When a newcomer logs in from /demo/app, then the callback page shows the linked account and the decoded, verified token claims', async () => {
    const b = new Browser(app.baseUrl);
    const landing = await b.get('/demo/app');
    expect(landing.status).toBe(200);
    expect(landing.text).toContain('/demo/app/login');
    const login = await b.get('/demo/app/login');
    expect(login.status).toBe(302);
    const callback = await journey(app, b, login.location!, freshCard());
    expect(callback.pathname).toBe('/demo/app/callback');
    const page = await b.get(callback.pathname + callback.search);
    expect(page.status).toBe(200);
    expect(page.text).toContain('id="demo-app-verified"');
    expect(page.text).toContain('alert-ok');
    expect(page.text).toMatch(/id="demo-app-account">[^<]*\d{4}</);
    expect(page.text).toContain('&quot;binding_id&quot;');
    expect(page.text).toContain('&quot;typ&quot;: &quot;at+jwt&quot;');
    expect(page.text).toContain('id="demo-app-id-claims"');
    // The raw tokens never reach the browser.
    expect(page.text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ/);
    // The callback is single use.
    const again = await b.get(callback.pathname + callback.search);
    expect(again.status).toBe(400);
    expect(() => field(again.text, '_csrf')).toThrow();
  });
});
