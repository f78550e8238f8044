/**
 * The token side of the authorization server against the real app (fake linking):
 * discovery and JWKS, client authentication, client_credentials, introspection,
 * revocation, and the merchant API's Bearer check.
 */
import Router from '@koa/router';
import Koa from 'koa';
import type { Server } from 'node:http';
import { decodeJwt, decodeProtectedHeader, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorHandler } from '../../src/http/error-handler.ts';
import { basic, clientCredentials, postForm, SECRETS, startOAuthApp, type OAuthTestApp } from './helpers.ts';

let app: OAuthTestApp;
const token = (form: Record<string, string | string[]>, headers: Record<string, string> = {}) => postForm(`${app.baseUrl}/oauth2/token`, form, headers);
const cardBackend = { authorization: basic('card-backend', SECRETS.cardBackend) };
const json = async (r: Response) => (await r.json()) as Record<string, unknown>;

beforeAll(async () => {
  app = await startOAuthApp();
}, 180_000); // an embedded Postgres boots slowly on a busy machine
afterAll(async () => {
  await app?.stop();
});

describe('discovery and JWKS (RFC 8414, OIDC Discovery, RFC 7517)', () => {
  it('When the metadata is fetched, then it names our endpoints and exactly what they enforce', async () => {
    for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
      const r = await fetch(`${app.baseUrl}${path}`);
      expect(r.status).toBe(200);
      const m = await json(r);
      expect(m.issuer).toBe(app.issuer);
      expect(m.token_endpoint).toBe(`${app.issuer}/oauth2/token`);
      expect(m.jwks_uri).toBe(`${app.issuer}/.well-known/jwks.json`);
      expect(m.code_challenge_methods_supported).toEqual(['S256']);
      expect(m.response_types_supported).toEqual(['code']);
      expect(m.subject_types_supported).toEqual(['pairwise']);
      expect(m.token_endpoint_auth_methods_supported).toEqual(['client_secret_basic', 'client_secret_post', 'private_key_jwt']);
      expect(m.authorization_response_iss_parameter_supported).toBe(true);
    }
  });

  it('When the JWKS is fetched, then it has public ES256 keys only, an ETag, a max-age, and answers 304 to If-None-Match (T4)', async () => {
    const r = await fetch(`${app.baseUrl}/.well-known/jwks.json`);
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('public, max-age=300');
    const etag = r.headers.get('etag');
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    const { keys } = (await r.json()) as { keys: Record<string, unknown>[] };
    expect(keys.length).toBe(2); // current + next, published before use (A4)
    for (const k of keys) {
      expect(k).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
      expect(k.d).toBeUndefined(); // RFC 7517 §9.2: never private members
    }
    const again = await fetch(`${app.baseUrl}/.well-known/jwks.json`, { headers: { 'if-none-match': etag! } });
    expect(again.status).toBe(304);
  });
});

describe('client authentication (RFC 6749 §2.3, RFC 7523)', () => {
  it('When client_secret_basic is used, then a client_credentials token is issued as an RFC 9068 at+jwt for the merchant', async () => {
    const r = await token({ grant_type: 'client_credentials', scope: 'bindings:read' }, cardBackend);
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const body = await json(r);
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'bindings:read' });
    expect(body.refresh_token).toBeUndefined();
    const at = body.access_token as string;
    expect(decodeProtectedHeader(at)).toMatchObject({ typ: 'at+jwt', alg: 'ES256' });
    const c = decodeJwt(at);
    expect(c).toMatchObject({ iss: app.issuer, aud: 'card', sub: 'card-backend', client_id: 'card-backend', scope: 'bindings:read' });
    expect(typeof c.jti).toBe('string');
    expect(c.exp! - c.iat!).toBe(600);
  });

  it('When client_secret_post is used by a client registered for it, then it works; basic for that client is refused', async () => {
    expect((await token({ grant_type: 'client_credentials', client_id: 'card-post', client_secret: SECRETS.cardPost })).status).toBe(200);
    const r = await token({ grant_type: 'client_credentials' }, { authorization: basic('card-post', SECRETS.cardPost) });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toContain('Basic');
  });

  it('When private_key_jwt is used, then the signed assertion authenticates, once only (RFC 7523 §3)', async () => {
    const assertion = await new SignJWT({ jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: 'ES256', kid: 'card-jwt-1' })
      .setIssuer('card-jwt')
      .setSubject('card-jwt')
      .setAudience(app.issuer)
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(app.cardJwtKey);
    const form = { grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion };
    const first = await token(form);
    expect(first.status).toBe(200);
    expect(decodeJwt((await json(first)).access_token as string).client_id).toBe('card-jwt');
    const replay = await token(form);
    expect(replay.status).toBe(401);
    expect((await json(replay)).error).toBe('invalid_client');
  });

  it('When an assertion is signed by another key, lives too long, or names another audience, then invalid_client', async () => {
    const other = (await import('jose')).generateKeyPair('ES256');
    const mk = async (o: { key?: CryptoKey; exp?: string; aud?: string }) =>
      new SignJWT({ jti: crypto.randomUUID() })
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer('card-jwt')
        .setSubject('card-jwt')
        .setAudience(o.aud ?? app.issuer)
        .setIssuedAt()
        .setExpirationTime(o.exp ?? '60s')
        .sign(o.key ?? app.cardJwtKey);
    for (const assertion of [await mk({ key: (await other).privateKey }), await mk({ exp: '1h' }), await mk({ aud: 'https://elsewhere.example' })]) {
      const r = await token({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion });
      expect(r.status).toBe(401);
    }
  });

  it('When an assertion has no exp, no jti, has expired, or names another client as sub, then invalid_client (RFC 7523 §3, OIDC Core §9)', async () => {
    const base = () => new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'card-jwt-1' }).setIssuer('card-jwt').setAudience(app.issuer).setIssuedAt();
    const now = Math.floor(Date.now() / 1000);
    const assertions = [
      await base().setSubject('card-jwt').setJti(crypto.randomUUID()).sign(app.cardJwtKey),
      await base().setSubject('card-jwt').setExpirationTime('60s').sign(app.cardJwtKey),
      await base().setSubject('card-jwt').setJti(crypto.randomUUID()).setExpirationTime(now - 5).sign(app.cardJwtKey),
      await base().setSubject('card-backend').setJti(crypto.randomUUID()).setExpirationTime('60s').sign(app.cardJwtKey),
    ];
    for (const assertion of assertions) {
      const r = await token({ grant_type: 'client_credentials', client_id: 'card-jwt', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion });
      expect(r.status).toBe(401);
      expect((await json(r)).error).toBe('invalid_client');
    }
  });

  it('When the secret is wrong, the client unknown, or two methods are combined, then the request is refused generically', async () => {
    const wrong = await token({ grant_type: 'client_credentials' }, { authorization: basic('card-backend', 'not-the-secret') });
    expect(wrong.status).toBe(401);
    expect(await json(wrong)).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
    expect((await token({ grant_type: 'client_credentials' }, { authorization: basic('nobody', 'x') })).status).toBe(401);
    expect((await token({ grant_type: 'client_credentials', client_id: 'card-backend' })).status).toBe(401);
    const both = await token({ grant_type: 'client_credentials', client_secret: SECRETS.cardBackend }, cardBackend);
    expect(both.status).toBe(400);
  });

  it('When a parameter is repeated or the body is not a form, then invalid_request (RFC 6749 §3.2)', async () => {
    const dup = await token({ grant_type: ['client_credentials', 'client_credentials'] }, cardBackend);
    expect(dup.status).toBe(400);
    expect((await json(dup)).error).toBe('invalid_request');
    const asJson = await fetch(`${app.baseUrl}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/json', ...cardBackend }, body: '{"grant_type":"client_credentials"}' });
    expect(asJson.status).toBe(400);
  });

  it('When a client asks for a grant or scope it is not registered for, then unauthorized_client / invalid_scope / unsupported_grant_type', async () => {
    expect((await json(await token({ grant_type: 'client_credentials', scope: 'openid' }, cardBackend))).error).toBe('invalid_scope');
    expect((await json(await token({ grant_type: 'client_credentials', scope: 'tags:write' }, cardBackend))).error).toBe('invalid_scope');
    expect((await json(await token({ grant_type: 'client_credentials' }, { authorization: basic('card-h5', SECRETS.cardH5) }))).error).toBe('unauthorized_client');
    expect((await json(await token({ grant_type: 'password', username: 'u', password: 'p' }, cardBackend))).error).toBe('unsupported_grant_type');
  });
});

describe('introspection and revocation (RFC 7662, RFC 7009)', () => {
  const introspect = (t: string, who = cardBackend) => postForm(`${app.baseUrl}/oauth2/introspect`, { token: t }, who);
  const revoke = (t: string, who = cardBackend, extra: Record<string, string> = {}) => postForm(`${app.baseUrl}/oauth2/revoke`, { token: t, ...extra }, who);

  it('When a live token is introspected by its merchant, then active with its claims; by another merchant, then inactive (§2.2)', async () => {
    const at = await clientCredentials(app, 'card-backend', SECRETS.cardBackend);
    const mine = await json(await introspect(at));
    expect(mine).toMatchObject({ active: true, client_id: 'card-backend', aud: 'card', token_type: 'Bearer', iss: app.issuer });
    const theirs = await json(await introspect(at, { authorization: basic('power-backend', SECRETS.powerBackend) }));
    expect(theirs).toEqual({ active: false });
  });

  it('When introspection is called without client authentication, then 401 (§2.1 MUST)', async () => {
    const r = await postForm(`${app.baseUrl}/oauth2/introspect`, { token: 'x' });
    expect(r.status).toBe(401);
  });

  it('When garbage is introspected, then just {active:false}', async () => {
    expect(await json(await introspect('not.a.jwt'))).toEqual({ active: false });
    expect(await json(await introspect('x'.repeat(43)))).toEqual({ active: false });
  });

  it('When an access token is revoked, then introspection reports it inactive; unknown tokens revoke with 200 (RFC 7009 §2.2)', async () => {
    const at = await clientCredentials(app, 'card-backend', SECRETS.cardBackend);
    const r = await revoke(at, cardBackend, { token_type_hint: 'access_token' });
    expect(r.status).toBe(200);
    expect(await json(await introspect(at))).toEqual({ active: false });
    expect((await revoke('unknown-token')).status).toBe(200);
  });

  it('When another merchant tries to revoke a token, then it is refused and the token stays active (IDOR)', async () => {
    const at = await clientCredentials(app, 'card-backend', SECRETS.cardBackend);
    const r = await revoke(at, { authorization: basic('power-backend', SECRETS.powerBackend) });
    expect(r.status).toBe(400);
    expect((await json(await introspect(at))).active).toBe(true);
  });

  it('When an unknown token_type_hint is sent, then unsupported_token_type (RFC 7009 §2.2.1)', async () => {
    expect((await json(await revoke('x', cardBackend, { token_type_hint: 'id_token' }))).error).toBe('unsupported_token_type');
  });
});

describe('userinfo errors (OIDC Core §5.3.3, RFC 6750 §3)', () => {
  const userinfo = (url: string, headers: Record<string, string> = {}) => fetch(url, { headers });

  it('When the access token is sent in the query string, then 400 invalid_request with a Bearer challenge naming it', async () => {
    const r = await userinfo(`${app.baseUrl}/oauth2/userinfo?access_token=abc`);
    expect(r.status).toBe(400);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm="wxbridge", error="invalid_request"/);
    expect((await json(r)).error).toBe('invalid_request');
  });

  it('When no token, a client_credentials token or a forged one is sent, then 401 with a Bearer challenge', async () => {
    const none = await userinfo(`${app.baseUrl}/oauth2/userinfo`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="wxbridge"');
    const backend = await userinfo(`${app.baseUrl}/oauth2/userinfo`, { authorization: `Bearer ${await clientCredentials(app, 'card-backend', SECRETS.cardBackend)}` });
    expect(backend.status).toBe(401);
    expect(backend.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });
});

describe('merchant API Bearer authentication (RFC 6750 §3, RFC 9068 §4)', () => {
  let api: Server;
  let apiUrl: string;
  beforeAll(async () => {
    const k = new Koa();
    k.use(async (ctx, next) => {
      ctx.state.log = app.deps.log;
      await next();
    });
    k.use(errorHandler({ views: app.deps.views }));
    const r = new Router();
    r.get('/api/v1/probe', app.oauth.merchantAuth.require('bindings:read'), (ctx) => {
      ctx.body = ctx.state.merchantAuth;
    });
    k.use(r.routes());
    api = await new Promise((resolve) => {
      const s = k.listen(0, '127.0.0.1', () => resolve(s));
    });
    const a = api.address();
    apiUrl = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/api/v1/probe`;
  });
  afterAll(() => {
    api?.close();
  });
  const call = (t?: string, url = apiUrl) => fetch(url, t ? { headers: { authorization: `Bearer ${t}` } } : {});

  it('When a client_credentials token with the scope is presented, then the merchant and client are known to the route', async () => {
    const r = await call(await clientCredentials(app, 'card-backend', SECRETS.cardBackend));
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ merchantId: 'card', clientId: 'card-backend', scopes: ['notices:send', 'bindings:read', 'bindings:write', 'binding-codes:write'] });
  });

  it('When no token is sent, then 401 with a bare Bearer challenge (RFC 6750 §3.1)', async () => {
    const r = await call();
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="wxbridge"');
  });

  it('When the token lacks the scope, then 403 insufficient_scope naming it (RFC 6750 §3.1)', async () => {
    const r = await call(await clientCredentials(app, 'card-backend', SECRETS.cardBackend, 'notices:send'));
    expect(r.status).toBe(403);
    expect(r.headers.get('www-authenticate')).toContain('error="insufficient_scope", scope="bindings:read"');
  });

  it('When the token is in the query string, then it is refused (RFC 9700 §4.3.2)', async () => {
    const t = await clientCredentials(app, 'card-backend', SECRETS.cardBackend);
    expect((await call(t, `${apiUrl}?access_token=${t}`)).status).toBe(400);
  });

  it('When the token is in the query string, then the 400 carries the Bearer challenge with error="invalid_request" (RFC 6750 §3, §3.1)', async () => {
    const t = await clientCredentials(app, 'card-backend', SECRETS.cardBackend);
    const r = await call(undefined, `${apiUrl}?access_token=${t}`);
    expect(r.status).toBe(400);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm="wxbridge", error="invalid_request"/);
  });

  it('When a revoked or tampered token is presented, then 401 invalid_token', async () => {
    const t = await clientCredentials(app, 'card-backend', SECRETS.cardBackend);
    const [h, , s] = t.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...decodeJwt(t), aud: 'power' })).toString('base64url')}.${s}`;
    expect((await call(forged)).status).toBe(401);
    await postForm(`${app.baseUrl}/oauth2/revoke`, { token: t }, cardBackend);
    const r = await call(t);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });
});
