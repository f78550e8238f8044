/**
 * Linking merchant accounts with each proof method of DESIGN.md, end to end over HTTP
 * against the demo merchant system (issue 4 "Linking"): verify-api (card, then SMS code),
 * oidc (openid-client ↔ the demo IdP), binding-code; the linked-accounts page, conflicts,
 * limits, default, unlink, webhooks and the audit log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LinkingFeature } from '../../src/linking/index.ts';
import type { TestApp } from '../helpers/app.ts';
import { BOOT_TIMEOUT_MS, capturedLogger, startLinkingApp, Browser, field, freshCard, linkWithOidc, loginAs, newWeChatUser, verifyAccount } from './helpers.ts';

let app: TestApp;
let linking: LinkingFeature;
const { log, lines: logs } = capturedLogger('debug');

beforeAll(async () => {
  ({ app, linking } = await startLinkingApp({ overrides: { log } }));
}, BOOT_TIMEOUT_MS);
afterAll(async () => {
  await app.stop();
});

async function userIn(merchant: string, over: Record<string, unknown> = {}): Promise<{ b: Browser; userId: string; identityId: string }> {
  const b = new Browser(app.baseUrl);
  const { userId } = await newWeChatUser(app, over);
  await loginAs(app, b, merchant, userId);
  const openid = (await (await fetch(`${app.baseUrl}/sandbox/control/users/${userId}`)).json()) as { accounts: { openid: string }[] };
  const identity = await linking.service.findIdentity('wx1234567890abcdef', openid.accounts[0]!.openid);
  return { b, userId, identityId: identity!.id };
}

const events = async (type: string, bindingId: string) =>
  (await app.deps.db.query('SELECT data FROM webhook_events WHERE type = $1 AND data->>\'bindingId\' = $2', [type, bindingId])).rows.length;

describe('verify-api: card number, then an SMS code (signed Standard Webhooks requests)', () => {
  it('When the user gives a demo card and the code the demo shows, then the card is linked, the merchant gets binding.created, and the page says so', async () => {
    const { b, identityId } = await userIn('card');
    const card = freshCard();
    const r = await verifyAccount(b, 'card', { card });
    expect(r.status).toBe(303);
    expect(r.location).toBe('/link/card?done=linked');
    const page = await b.get(r.location!);
    expect(page.text).toContain('绑定成功');
    expect(page.text).toContain(`•••• ${card.slice(-4)}`);
    const [binding] = await linking.service.listBindings({ merchantId: 'card', identityId, status: 'active' });
    expect(binding).toMatchObject({ proof: 'verify-api', isDefault: true, createdBy: `user:${identityId}` });
    expect(await events('binding.created', binding!.id)).toBe(1);
  });

  it('When the SMS code is wrong or the card frozen, then nothing is linked and the merchant\'s message is shown', async () => {
    const { b, identityId } = await userIn('card');
    const wrong = await verifyAccount(b, 'card', { card: freshCard() }, '000000');
    expect(wrong.status).toBe(400);
    expect(wrong.text).toContain('验证码错误');
    const frozen = await verifyAccount(b, 'card', { card: '6222 0210 0000 0000' });
    expect(frozen.status).toBe(400);
    expect(frozen.text).toContain('此卡已冻结');
    expect(await linking.service.listBindings({ merchantId: 'card', identityId })).toEqual([]);
  });

  it('When one user fails maxFailedAttempts times, then further attempts are refused for the hour (429)', async () => {
    const { b } = await userIn('card');
    for (let i = 0; i < 5; i++) expect((await verifyAccount(b, 'card', { card: freshCard() }, '999999')).status).toBe(400);
    const blocked = await b.get('/link/card/verify');
    expect(blocked.status).toBe(429);
    expect(blocked.text).toContain('尝试次数过多');
  });

  it('When many users fail against one card, then that card is refused even for a new user (per-account limit)', async () => {
    const card = freshCard();
    for (let i = 0; i < 5; i++) {
      const { b } = await userIn('card');
      expect((await verifyAccount(b, 'card', { card }, '999999')).status).toBe(400);
    }
    const { b } = await userIn('card');
    expect((await verifyAccount(b, 'card', { card })).status).toBe(429);
  });

  it('When a step is submitted twice, then the second is refused (a proof step is single-use)', async () => {
    const { b } = await userIn('card');
    const start = await b.get('/link/card/verify');
    const form = { _csrf: field(start.text, '_csrf'), proof: field(start.text, 'proof'), card: freshCard() };
    expect((await b.post('/link/card/verify', form)).status).toBe(200);
    const again = await b.post('/link/card/verify', form);
    expect(again.status).toBe(400);
    expect(again.text).toContain('验证已超时');
  });

  it('When anything was typed, then neither the database nor the logs hold it', async () => {
    const { b } = await userIn('card');
    const card = freshCard();
    await verifyAccount(b, 'card', { card }, '654321');
    await verifyAccount(b, 'card', { card });
    const tables = ['identities', 'bindings', 'audit_log', 'webhook_events', 'binding_codes', 'subjects'];
    for (const t of tables) {
      const dump = (await app.deps.db.query<{ j: string }>(`SELECT row_to_json(x)::text AS j FROM ${t} x`)).rows.map((r) => r.j).join('\n');
      expect(dump).not.toContain(card);
      expect(dump).not.toContain('654321');
    }
    const all = logs.join('');
    expect(all.length).toBeGreaterThan(0);
    expect(all).not.toContain(card);
    expect(all).not.toContain('654321');
  });
});

describe('oidc: the merchant\'s identity provider (code + PKCE + nonce)', () => {
  it('When the user signs in at the demo bank, then the account of the ID token\'s claim is linked with its card_masked display', async () => {
    const { b, identityId } = await userIn('card');
    const r = await linkWithOidc(b, 'card', 'bob');
    expect(r.status).toBe(303);
    expect(r.location).toBe('/link/card?done=linked');
    const [binding] = await linking.service.listBindings({ merchantId: 'card', identityId });
    expect(binding).toMatchObject({ proof: 'oidc', accountDisplay: '•••• 5678' });
  });

  it('When the callback is replayed or arrives in another WeChat session, then it is refused and nothing changes', async () => {
    const { b, identityId } = await userIn('card');
    const login = await b.follow(await b.get('/link/card/oidc'));
    const action = /action="([^"]+\/login)"/.exec(login.text)![1]!;
    let r = await b.post(action, { _csrf: field(login.text, '_csrf'), username: 'carol', password: 'demo' });
    r = await b.get(new URL(r.location!).pathname);
    const callback = new URL(r.location!);
    const other = await userIn('card');
    const stolen = await other.b.get(callback.pathname + callback.search);
    expect(stolen.status).toBe(400);
    const own = await b.get(callback.pathname + callback.search);
    expect(own.status).toBe(400); // the state was consumed by the refused attempt
    expect(await linking.service.listBindings({ merchantId: 'card', identityId })).toEqual([]);
  });

  it('When the password is wrong, then the demo IdP says so and nothing is linked', async () => {
    const { b } = await userIn('card');
    const r = await linkWithOidc(b, 'card', 'alice', 'nope');
    expect(r.status).toBe(400);
    expect(r.text).toContain('用户名或密码错误');
  });
});

describe('conflicts, limits, default and unlink', () => {
  it('When a card already linked to one user is proven by another under exclusive, then a clear conflict shows and nothing changes', async () => {
    const first = await userIn('card');
    const card = freshCard();
    expect((await verifyAccount(first.b, 'card', { card })).location).toBe('/link/card?done=linked');
    const second = await userIn('card');
    const r = await verifyAccount(second.b, 'card', { card });
    expect(r.location).toBe('/link/card?done=conflict');
    expect((await second.b.get(r.location!)).text).toContain('已绑定到另一个微信用户');
    expect(await linking.service.listBindings({ merchantId: 'card', identityId: second.identityId })).toEqual([]);
  });

  it('When a user reaches maxAccountsPerUser (power: 3), then the next link is refused and the page offers no more methods', async () => {
    const { b, identityId } = await userIn('power');
    for (let i = 0; i < 3; i++) {
      const acct = `88${String(Date.now() % 1e8).padStart(8, '0')}`.slice(0, 8) + String(i).padStart(2, '0');
      expect((await verifyAccount(b, 'power', { account: acct })).location).toBe('/link/power?done=linked');
    }
    const r = await verifyAccount(b, 'power', { account: '8899999999' });
    expect(r.location).toBe('/link/power?done=limit');
    const page = await b.get(r.location!);
    expect(page.text).toContain('达到上限');
    expect(page.text).not.toContain('/link/power/verify');
    expect(await linking.service.listBindings({ merchantId: 'power', identityId, status: 'active' })).toHaveLength(3);
  });

  it('When the user makes another account default and unlinks the default, then exactly one default remains and binding.revoked is sent', async () => {
    const { b, identityId } = await userIn('card');
    await verifyAccount(b, 'card', { card: freshCard() });
    await verifyAccount(b, 'card', { card: freshCard() });
    const [a, second] = await linking.service.listBindings({ merchantId: 'card', identityId, status: 'active' });
    expect(a!.isDefault).toBe(true);
    const page = await b.get('/link/card');
    const r = await b.post('/link/card/default', { _csrf: field(page.text, '_csrf'), binding: second!.id });
    expect(r.location).toBe('/link/card?done=default');
    expect((await linking.service.getBinding(second!.id))!.isDefault).toBe(true);
    const confirm = await b.get(`/link/card/unlink/${second!.id}`);
    expect(confirm.text).toContain('解除绑定？');
    const noCsrf = await b.post(`/link/card/unlink/${second!.id}`, { _csrf: 'forged' });
    expect(noCsrf.status).toBe(403);
    const done = await b.post(`/link/card/unlink/${second!.id}`, { _csrf: field(confirm.text, '_csrf') });
    expect(done.location).toBe('/link/card?done=unlinked');
    expect((await linking.service.getBinding(second!.id))!.status).toBe('revoked');
    expect((await linking.service.getBinding(a!.id))!.isDefault).toBe(true);
    expect(await events('binding.revoked', second!.id)).toBe(1);
  });

  it('When a user opens another user\'s binding, then it does not exist for them (404)', async () => {
    const owner = await userIn('card');
    await verifyAccount(owner.b, 'card', { card: freshCard() });
    const [binding] = await linking.service.listBindings({ merchantId: 'card', identityId: owner.identityId });
    const other = await userIn('card');
    expect((await other.b.get(`/link/card/unlink/${binding!.id}`)).status).toBe(404);
    const page = await other.b.get('/link/card/code');
    expect((await other.b.post(`/link/card/unlink/${binding!.id}`, { _csrf: field(page.text, '_csrf') })).status).toBe(404);
  });
});

describe('audit log', () => {
  it('When links, unlinks and failed proofs happened, then each is in the hash chain and the chain verifies; an edit is detected', async () => {
    const actions = (await app.deps.db.query<{ action: string }>('SELECT DISTINCT action FROM audit_log')).rows.map((r) => r.action);
    expect(actions).toEqual(expect.arrayContaining(['binding.linked', 'binding.unlinked', 'proof.failed', 'binding.default_changed']));
    const ok = await linking.service.verifyAuditChain();
    expect(ok.ok).toBe(true);
    expect(ok.checked).toBeGreaterThan(10);
    const victim = (await app.deps.db.query<{ id: number }>('SELECT id FROM audit_log ORDER BY id LIMIT 1 OFFSET 3')).rows[0]!.id;
    await app.deps.db.query(`UPDATE audit_log SET detail = '{"reason":"edited"}' WHERE id = $1`, [victim]);
    expect(await linking.service.verifyAuditChain()).toMatchObject({ ok: false, brokenAt: victim });
  });
});
