/**
 * The merchant API (DESIGN.md "Merchant API") as a merchant meets it: Bearer tokens from
 * client_credentials, scopes per route, only its own objects (ASVS 8.2.2, 8.4.1; T11
 * IDOR), and every response checked against the published OpenAPI 3.1 document.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LinkingFeature } from '../../src/linking/index.ts';
import { APP_ID, clientCredentials, SECRETS, startOAuthApp, type OAuthTestApp } from './helpers.ts';
import { createResponseChecker } from './openapi-check.ts';

let app: OAuthTestApp;
let doc: Parameters<typeof createResponseChecker>[0];
let checker: ReturnType<typeof createResponseChecker>;
let card: string;
let power: string;
let cardBinding: { id: string; account: string };

beforeAll(async () => {
  app = await startOAuthApp();
  doc = (await (await fetch(`${app.baseUrl}/api/v1/openapi.json`)).json()) as typeof doc;
  checker = createResponseChecker(doc);
  card = await clientCredentials(app, 'card-backend', SECRETS.cardBackend);
  power = await clientCredentials(app, 'power-backend', SECRETS.powerBackend);
  const linking = (app.deps.features.find((f) => f.name === 'linking') as LinkingFeature).service;
  const identity = await linking.upsertFromLogin({ appId: APP_ID, openid: `oApi${randomUUID().slice(0, 8)}` });
  const account = `6222${Date.now()}`;
  const linked = await linking.link({ merchantId: 'card', identityId: identity.id, account: { id: account, display: '**** 0001' }, proof: 'verify-api', actor: 'test', source: 'api' });
  if (!linked.ok) throw new Error('link failed');
  cardBinding = { id: linked.binding.id, account };
}, 180_000); // an embedded Postgres boots slowly on a busy machine
afterAll(async () => {
  await app?.stop();
});

/** Calls the API and checks the answer against the document; returns status and body. */
async function call(token: string | null, method: 'get' | 'post' | 'put', path: string, docPath: string, body?: unknown, headers: Record<string, string> = {}) {
  const r = await fetch(`${app.baseUrl}${path}`, {
    method: method.toUpperCase(),
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await r.json()) as Record<string, unknown>;
  checker.check(docPath, method, r.status, json);
  return { status: r.status, body: json, headers: r.headers };
}

describe('the OpenAPI document (OpenAPI 3.1)', () => {
  it('When /api/v1/openapi.json is fetched, then it documents bindings, binding codes and notices with the client_credentials scopes', async () => {
    expect(doc).toMatchObject({ openapi: '3.1.0' });
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/api/v1/binding-codes',
      '/api/v1/bindings',
      '/api/v1/bindings/{id}/revoke',
      '/api/v1/identities/{sub}/tags',
      '/api/v1/notices',
      '/api/v1/notices/{id}',
    ]);
    const flows = (doc.components as unknown as { securitySchemes: { merchantToken: { flows: { clientCredentials: { tokenUrl: string; scopes: object } } } } }).securitySchemes.merchantToken.flows;
    expect(flows.clientCredentials.tokenUrl).toBe(`${app.baseUrl}/oauth2/token`);
    expect(Object.keys(flows.clientCredentials.scopes)).toContain('bindings:read');
  });
});

describe('tags on a merchant\'s users (issue 6: CRM tags that target notices)', () => {
  it('When a merchant replaces and reads its tags on its user, then every answer matches the document, and no one else reaches them', async () => {
    const crm = await clientCredentials(app, 'card-crm', SECRETS.cardCrm);
    const listed = await call(crm, 'get', `/api/v1/bindings?account=${cardBinding.account}`, '/api/v1/bindings');
    const sub = (listed.body.bindings as { sub: string }[])[0]!.sub;
    const path = `/api/v1/identities/${encodeURIComponent(sub)}/tags`;
    const tagsPath = '/api/v1/identities/{sub}/tags';
    expect((await call(crm, 'put', path, tagsPath, { tags: ['vip', '金卡'] })).body).toEqual({ sub, tags: ['vip', '金卡'] });
    expect((await call(crm, 'get', path, tagsPath)).body).toEqual({ sub, tags: ['vip', '金卡'] });
    expect((await call(crm, 'put', path, tagsPath, { tags: ['has space'] })).status).toBe(400);
    expect((await call(crm, 'put', path, tagsPath, { tags: ['a', 'a'] })).status).toBe(400);
    // A token without the scope (another merchant's, here) is refused; a subject of no user of this merchant is unknown.
    expect((await call(power, 'get', path, tagsPath)).status).toBe(403);
    expect((await call(crm, 'get', '/api/v1/identities/not-a-subject/tags', tagsPath)).status).toBe(404);
    expect((await call(null, 'get', path, tagsPath)).status).toBe(401);
  });
});

describe('bindings and binding codes (DESIGN.md "Merchant API")', () => {
  it('When a merchant lists bindings of its account, then it gets them in the documented shape', async () => {
    const r = await call(card, 'get', `/api/v1/bindings?account=${cardBinding.account}`, '/api/v1/bindings');
    expect(r.status).toBe(200);
    const list = r.body.bindings as { id: string; sub: string }[];
    expect(list.map((b) => b.id)).toEqual([cardBinding.id]);
    const bySub = await call(card, 'get', `/api/v1/bindings?sub=${list[0]!.sub}`, '/api/v1/bindings');
    expect((bySub.body.bindings as { id: string }[]).map((b) => b.id)).toContain(cardBinding.id);
  });

  it('When another merchant asks for that account or revokes that binding id, then it sees nothing and gets 404 (IDOR, ASVS 8.4.1)', async () => {
    const list = await call(power, 'get', `/api/v1/bindings?account=${cardBinding.account}`, '/api/v1/bindings');
    expect(list.body).toEqual({ bindings: [] });
    const revoke = await call(power, 'post', `/api/v1/bindings/${cardBinding.id}/revoke`, '/api/v1/bindings/{id}/revoke', { reason: 'probe' });
    expect(revoke.status).toBe(404);
    const still = await call(card, 'get', `/api/v1/bindings?account=${cardBinding.account}&status=active`, '/api/v1/bindings');
    expect((still.body.bindings as unknown[]).length).toBe(1);
  });

  it('When a call has no token or lacks the scope, then 401 / 403 in the documented error shape (RFC 6750 §3.1)', async () => {
    const none = await call(null, 'get', `/api/v1/bindings?account=x`, '/api/v1/bindings');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="wxbridge"');
    const narrow = await clientCredentials(app, 'card-backend', SECRETS.cardBackend, 'notices:send');
    const scoped = await call(narrow, 'get', `/api/v1/bindings?account=x`, '/api/v1/bindings');
    expect(scoped.status).toBe(403);
    const noCodes = await call(power, 'post', '/api/v1/binding-codes', '/api/v1/binding-codes', { account: 'METER-9' });
    expect(noCodes.status).toBe(403);
  });

  it('When a merchant makes a binding code, then 201 with a one-time link in the documented shape', async () => {
    const r = await call(card, 'post', '/api/v1/binding-codes', '/api/v1/binding-codes', { account: 'ACC-77', display: '**** 0077', expiresIn: 600 });
    expect(r.status).toBe(201);
    expect(String(r.body.url)).toContain('/link/card/code');
  });

  it('When the merchant revokes its binding, then 200 with the revoked binding, and revoking again is idempotent', async () => {
    const r = await call(card, 'post', `/api/v1/bindings/${cardBinding.id}/revoke`, '/api/v1/bindings/{id}/revoke', { reason: 'card cancelled' });
    expect(r.status).toBe(200);
    expect(r.body.binding).toMatchObject({ id: cardBinding.id, status: 'revoked', revokeReason: 'card cancelled' });
    expect((await call(card, 'post', `/api/v1/bindings/${cardBinding.id}/revoke`, '/api/v1/bindings/{id}/revoke', { reason: 'again' })).status).toBe(200);
  });

  it('When a request body is invalid, then 400 in the documented error shape', async () => {
    const r = await call(card, 'post', '/api/v1/binding-codes', '/api/v1/binding-codes', { account: '', extra: true });
    expect(r.status).toBe(400);
  });
});

describe('notices (documented here; behaviour tested by the notices feature)', () => {
  it('When another merchant’s or an unknown notice id is asked for, then 404 in the documented shape', async () => {
    const r = await call(card, 'get', `/api/v1/notices/${randomUUID()}`, '/api/v1/notices/{id}');
    expect(r.status).toBe(404);
  });

  it('When the status of a notice is asked with an invalid page query, then 400 in the documented shape', async () => {
    const r = await call(card, 'get', `/api/v1/notices/${randomUUID()}?limit=0`, '/api/v1/notices/{id}');
    expect(r.status).toBe(400);
  });

  it('When a notice is posted, then the answer (accepted or refused) matches the document', async () => {
    const r = await call(card, 'post', '/api/v1/notices', '/api/v1/notices', { to: { account: 'nobody-here' }, text: 'hello' }, { 'idempotency-key': randomUUID() });
    expect([202, 400, 409, 422]).toContain(r.status);
    const noKey = await call(card, 'post', '/api/v1/notices', '/api/v1/notices', { to: { account: 'x' }, text: 'hi' });
    expect(noKey.status).toBe(400);
  });
});
