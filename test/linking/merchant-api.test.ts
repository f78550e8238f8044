/**
 * The merchant API of the linking feature (DESIGN.md "Merchant API"): bindings by account or
 * sub, revoke, and binding codes (link and WeChat QR), with real client_credentials tokens
 * from /oauth2/token. A merchant sees only its own objects (ASVS 8.2.2, 8.4.1: IDOR → 404).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_SECRETS } from '../../src/config/demo.ts';
import type { LinkingFeature } from '../../src/linking/index.ts';
import type { TestApp } from '../helpers/app.ts';
import { BOOT_TIMEOUT_MS, startLinkingApp, Browser, control, field, loginAs, newWeChatUser } from './helpers.ts';

let app: TestApp;
let linking: LinkingFeature;
let cardToken: string;
let powerToken: string;

async function token(clientId: string, secret: string, scope?: string): Promise<string> {
  const r = await fetch(`${app.baseUrl}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...(scope ? { scope } : {}) }).toString(),
  });
  expect(r.status).toBe(200);
  return ((await r.json()) as { access_token: string }).access_token;
}

async function api(path: string, tok: string | null, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`${app.baseUrl}/api/v1${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { ...(tok ? { authorization: `Bearer ${tok}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  ({ app, linking } = await startLinkingApp());
  cardToken = await token('card-backend', DEMO_SECRETS.cardBackend);
  powerToken = await token('power-backend', DEMO_SECRETS.powerBackend);
}, BOOT_TIMEOUT_MS);
afterAll(async () => {
  await app.stop();
});

/** A new WeChat user opens the merchant's link, logs in, and confirms (or types) the code. */
async function redeemInBrowser(url: string, expectLive = true): Promise<{ b: Browser; res: Awaited<ReturnType<Browser['post']>> }> {
  const b = new Browser(app.baseUrl);
  const { userId } = await newWeChatUser(app);
  const u = new URL(url);
  const landed = await b.follow(await loginAs(app, b, 'card', userId, u.pathname + u.search));
  // A live code comes with a confirmation of what it links; a dead one is not even echoed back.
  if (expectLive) expect(landed.text).toContain('确认绑定');
  else expect(landed.text).not.toContain(u.searchParams.get('c')!);
  return { b, res: await b.post('/link/card/code', { _csrf: field(landed.text, '_csrf'), code: u.searchParams.get('c')! }) };
}

describe('binding codes', () => {
  it('When the merchant makes a code and the user opens its link, then after a confirmation the account is linked, once', async () => {
    const made = await api('/binding-codes', cardToken, { account: 'ACC-1001', display: '尾号 1001', expiresIn: 600 });
    expect(made.status).toBe(201);
    expect(made.json.code).toMatch(/^[A-Z2-9]{12}$/);
    expect(made.json.url).toBe(`${app.baseUrl}/link/card/code?c=${made.json.code}`);
    expect(Date.parse(made.json.expiresAt as string)).toBeGreaterThan(Date.now() + 590_000);
    const first = await redeemInBrowser(made.json.url as string);
    expect(first.res.location).toBe('/link/card?done=linked');
    const second = await redeemInBrowser(made.json.url as string, false);
    expect(second.res.status).toBe(400);
    expect(second.res.text).toContain('绑定码无效或已过期');
    const list = await api('/bindings?account=ACC-1001', cardToken);
    expect(list.json.bindings).toEqual([expect.objectContaining({ account: 'ACC-1001', accountDisplay: '尾号 1001', proof: 'binding-code', status: 'active' })]);
  });

  it('When a code has expired, then it links nothing', async () => {
    const made = await api('/binding-codes', cardToken, { account: 'ACC-1002', display: null });
    await app.deps.db.query(`UPDATE binding_codes SET expires_at = now() - interval '1 second' WHERE account_id = 'ACC-1002'`);
    expect((await redeemInBrowser(made.json.url as string, false)).res.status).toBe(400);
  });

  it('When the merchant asks for a QR code, then a QR_STR_SCENE ticket is made and redeemBindingCode(scene) links the scanner', async () => {
    const made = await api('/binding-codes', cardToken, { account: 'ACC-QR', display: 'QR', expiresIn: 900, qr: true });
    expect(made.status).toBe(201);
    expect(made.json.qrUrl).toContain('/sandbox/cgi-bin/showqrcode?ticket=');
    const scene = (await app.deps.db.query<{ qr_scene: string }>(`SELECT qr_scene FROM binding_codes WHERE account_id = 'ACC-QR'`)).rows[0]!.qr_scene;
    expect(scene).toMatch(/^bc_[A-Za-z0-9]{24}$/);
    const tickets = await control<{ sceneStr?: string; expiresAt?: number }[]>(app, '/qrcodes');
    expect(tickets.some((t) => t.sceneStr === scene)).toBe(true);
    const identity = await linking.service.recordInteraction({ appId: 'wx1234567890abcdef', openid: 'o-scanner-1', subscribed: true });
    const r = await linking.service.redeemBindingCode({ by: { qrScene: scene }, identityId: identity.id, actor: `user:${identity.id}`, source: 'push' });
    expect(r).toMatchObject({ ok: true, created: true, merchantId: 'card' });
    expect(await linking.service.redeemBindingCode({ by: { qrScene: scene }, identityId: identity.id, actor: 'x', source: 'push' })).toEqual({ ok: false, reason: 'invalid_code' });
  });
});

describe('bindings', () => {
  it('When listed by account and by sub, then the same binding with its pairwise sub comes back; exactly one selector is required', async () => {
    const { json } = await api('/bindings?account=ACC-1001', cardToken);
    const [b] = json.bindings as { id: string; sub: string }[];
    expect(b!.sub).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const bySub = await api(`/bindings?sub=${b!.sub}`, cardToken);
    expect((bySub.json.bindings as { id: string }[]).map((x) => x.id)).toContain(b!.id);
    expect((await api('/bindings', cardToken)).status).toBe(400);
    expect((await api(`/bindings?account=ACC-1001&sub=${b!.sub}`, cardToken)).status).toBe(400);
    expect((await api('/bindings?account=ACC-1001&extra=1', cardToken)).status).toBe(400);
  });

  it('When another merchant asks for or revokes these bindings, then they do not exist for it (IDOR → 404)', async () => {
    const { json } = await api('/bindings?account=ACC-1001', cardToken);
    const [b] = json.bindings as { id: string; sub: string }[];
    expect((await api('/bindings?account=ACC-1001', powerToken)).json.bindings).toEqual([]);
    expect((await api(`/bindings?sub=${b!.sub}`, powerToken)).json.bindings).toEqual([]);
    const r = await api(`/bindings/${b!.id}/revoke`, powerToken, { reason: 'nope' });
    expect(r.status).toBe(404);
    expect((await api('/bindings/not-a-uuid/revoke', cardToken, { reason: 'x' })).status).toBe(404);
    expect((await linking.service.getBinding(b!.id))!.status).toBe('active');
  });

  it('When the merchant revokes a binding, then it is revoked with the reason, binding.revoked is queued, and a repeat is harmless', async () => {
    const { json } = await api('/bindings?account=ACC-1001', cardToken);
    const [b] = json.bindings as { id: string }[];
    const r = await api(`/bindings/${b!.id}/revoke`, cardToken, { reason: 'card cancelled' });
    expect(r.status).toBe(200);
    expect(r.json.binding).toMatchObject({ id: b!.id, status: 'revoked', revokeReason: 'card cancelled' });
    const again = await api(`/bindings/${b!.id}/revoke`, cardToken, { reason: 'again' });
    expect(again.json.binding).toMatchObject({ status: 'revoked', revokeReason: 'card cancelled' });
    const events = await app.deps.db.query(`SELECT 1 FROM webhook_events WHERE type = 'binding.revoked' AND data->>'bindingId' = $1`, [b!.id]);
    expect(events.rows).toHaveLength(1);
  });

  it('When the token is missing or lacks the scope, then 401 / 403 in RFC 6750 form', async () => {
    expect((await api('/bindings?account=x', null)).status).toBe(401);
    const narrow = await token('card-backend', DEMO_SECRETS.cardBackend, 'notices:send');
    const r = await api('/bindings?account=x', narrow);
    expect(r.status).toBe(403);
    expect(r.json.error).toBe('insufficient_scope');
    expect((await api('/binding-codes', narrow, { account: 'x' })).status).toBe(403);
  });
});
