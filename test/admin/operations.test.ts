/**
 * Admin operations over real HTTP: roles and merchant scoping (ASVS 8.2.1, 8.2.2, 8.4.1),
 * unlink through linking (tokens stop working), manual link, CSV import/export, the
 * audit chain check, and the re-authentication gate on key rotation (ASVS 7.5.1).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySecret } from '../../src/security/secrets.ts';
import { createActivityRecorder } from '../../src/admin/activity.queries.ts';
import { DEMO_ACCOUNT } from '../../src/config/demo.ts';
import type { InboxFeature } from '../../src/inbox/index.ts';
import { keyspace, quotaDay } from '../../src/store/keyspace.ts';
import { introspect, linkingOf, makeAdmin, nextCode, oauthOf, seed, signIn, startAdminApp, tokenFor, type AdminTestApp, type Client, type Seeded, type TestAdmin, START_TIMEOUT } from './helpers.ts';

describe('admin operations', { timeout: 60_000 }, () => {
  let app: AdminTestApp;
  let s: Seeded;
  let root: TestAdmin;
  let rootC: Client;
  let powerOp: Client;
  let powerOpAdmin: TestAdmin;
  beforeAll(async () => {
    app = await startAdminApp();
    s = await seed(app);
    root = await makeAdmin(app, { role: 'admin' });
    rootC = await signIn(app, root);
    powerOpAdmin = await makeAdmin(app, { role: 'operator', merchantId: 'power' });
    powerOp = await signIn(app, powerOpAdmin);
  }, START_TIMEOUT);
  afterAll(async () => {
    await app?.stop();
  });
  const audit = async (action: string) =>
    (await app.deps.db.query<{ actor: string; source: string; detail: Record<string, unknown>; merchant_id: string | null }>('SELECT actor, source, detail, merchant_id FROM audit_log WHERE action = $1 ORDER BY id', [action])).rows;

  it('When a merchant-scoped operator opens or unlinks another merchant’s binding by URL, then it is refused with 403 and audited (ASVS 8.2.2, 8.4.1)', async () => {
    expect((await powerOp.get(`/admin/bindings/${s.cardUser.bindingId}`)).status).toBe(403);
    await powerOp.get('/admin/bindings');
    expect((await powerOp.post(`/admin/bindings/${s.cardUser.bindingId}/unlink`, { reason: 'not mine' })).status).toBe(403);
    expect((await powerOp.get(`/admin/identities/${s.cardUser.identityId}`)).status).toBe(403);
    expect((await powerOp.get('/admin/merchants/card')).status).toBe(403);
    const denied = await audit('admin.access_denied');
    expect(denied.filter((d) => d.actor === `admin:${powerOpAdmin.id}`).length).toBeGreaterThanOrEqual(4);
    expect((await app.deps.db.query(`SELECT status FROM bindings WHERE id = $1`, [s.cardUser.bindingId])).rows[0]).toEqual({ status: 'active' });
  });

  it('When a merchant-scoped operator lists, searches or exports, then nothing of another merchant appears', async () => {
    const list = await powerOp.get('/admin/bindings');
    expect(list.text).toContain(s.powerUser.bindingId);
    expect(list.text).not.toContain(s.cardUser.bindingId);
    expect((await powerOp.get('/admin/bindings?merchant=card')).text).not.toContain(s.cardUser.bindingId);
    const search = await powerOp.get(`/admin/search?q=${s.cardUser.openid}`);
    expect(search.text).toContain('No WeChat user matches');
    const csv = await powerOp.get('/admin/bindings/export.csv');
    expect(csv.text).toContain(s.powerUser.bindingId);
    expect(csv.text).not.toContain(',card,');
    const auditPage = await powerOp.get('/admin/audit');
    expect(auditPage.text).not.toContain(s.cardUser.bindingId);
    expect(auditPage.text).toContain('data-label="Merchant">power<');
    expect(auditPage.text).not.toContain('data-label="Merchant">card<');
    // Rows of no merchant (the root admin's sign-in) are for unscoped accounts only.
    expect(auditPage.text).not.toContain(`admin:${root.id}`);
    expect((await powerOp.get('/admin/keys')).status).toBe(403);
    expect((await powerOp.get('/admin/admins')).status).toBe(403);
  });

  it('When a merchant-scoped operator opens a user that another merchant tagged too, then only its own merchant\'s tags show (ASVS 8.4.1)', async () => {
    await app.deps.db.query(`UPDATE identities SET tags = $2 WHERE id = $1`, [s.powerUser.identityId, ['power:meter-a', 'card:secret-segment']]);
    const page = (await powerOp.get(`/admin/identities/${s.powerUser.identityId}`)).text;
    expect(page).toContain('power:meter-a');
    expect(page).not.toContain('secret-segment');
    expect((await rootC.get(`/admin/identities/${s.powerUser.identityId}`)).text).toContain('card:secret-segment');
  });

  it('When a viewer tries to unlink, then the form is not offered and the POST is refused (ASVS 8.2.1)', async () => {
    const viewer = await signIn(app, await makeAdmin(app, { role: 'viewer' }));
    const page = await viewer.get(`/admin/bindings/${s.powerUser.bindingId}`);
    expect(page.status).toBe(200);
    expect(page.text).not.toContain('unlink-form');
    expect((await viewer.post(`/admin/bindings/${s.powerUser.bindingId}/unlink`, { reason: 'testing' })).status).toBe(403);
  });

  it('When an operator unlinks with a reason, then the binding is revoked through linking, the merchant is told, its tokens go inactive, and the audit row says who and from where', async () => {
    const { cardUser } = await seed(app);
    const token = await tokenFor(app, cardUser);
    expect((await introspect(app, token)).active).toBe(true);
    const cardOp = await signIn(app, await makeAdmin(app, { role: 'operator', merchantId: 'card' }));
    await cardOp.get(`/admin/bindings/${cardUser.bindingId}`);
    const r = await cardOp.post(`/admin/bindings/${cardUser.bindingId}/unlink`, { reason: 'card cancelled by phone' });
    expect(r.status).toBe(303);
    expect((await cardOp.follow(r)).text).toContain('card cancelled by phone');
    expect((await introspect(app, token)).active).toBe(false);
    const row = (await audit('binding.unlinked')).at(-1)!;
    expect(row.actor).toMatch(/^admin:/);
    expect(row.source).toMatch(/^admin /);
    expect(row.detail).toEqual({ reason: 'card cancelled by phone' });
    const hooks = await app.deps.db.query<{ data: { bindingId: string } }>(`SELECT data FROM webhook_events WHERE type = 'binding.revoked'`);
    expect(hooks.rows.map((h) => h.data.bindingId)).toContain(cardUser.bindingId);
  });

  it('When an operator links an account by hand, then the binding is recorded as admin-proven with the note', async () => {
    const { powerUser } = await seed(app);
    await powerOp.get('/admin/bindings/new');
    const r = await powerOp.post('/admin/bindings/new', { merchant: 'power', identity: powerUser.openid, account: 'P-MANUAL-1', display: '户号 M1', note: 'bill shown at counter 3' });
    expect(r.status).toBe(303);
    const page = await powerOp.follow(r);
    expect(page.text).toContain('admin-proven');
    const b = await app.deps.db.query(`SELECT proof, created_by FROM bindings WHERE account_id = 'P-MANUAL-1'`);
    expect(b.rows[0]).toEqual({ proof: 'admin', created_by: `admin:${powerOpAdmin.id}` });
    expect((await powerOp.post('/admin/bindings/new', { merchant: 'card', identity: powerUser.openid, account: 'X', note: 'other merchant' })).status).toBe(403);
  });

  it('When a CSV with bad rows is dry-run or applied, then every bad row is reported and nothing is imported; a clean file then imports', async () => {
    const { powerUser } = await seed(app);
    await powerOp.get('/admin/bindings/import');
    const bad = [
      'merchant_id,openid,account_id,account_display',
      `power,${powerUser.openid},P-IMP-1,户号 1`,
      `card,${powerUser.openid},C-1,x`,
      'power,oNobodyAtAll,P-IMP-2,',
      `power,${powerUser.openid},P-IMP-1,dup`,
      'power,only-two',
      `power,${powerUser.openid},,`,
    ].join('\n');
    const dry = await powerOp.post('/admin/bindings/import', { csv: bad, mode: 'dry-run' });
    expect(dry.status).toBe(200);
    for (const line of [3, 4, 5, 6, 7]) expect(dry.text).toContain(`line ${line}</span>`);
    expect(dry.text).toContain('5 bad');
    const refused = await powerOp.post('/admin/bindings/import', { csv: bad, mode: 'apply' });
    expect(refused.status).toBe(400);
    expect((await app.deps.db.query(`SELECT 1 FROM bindings WHERE account_id = 'P-IMP-1'`)).rowCount).toBe(0);
    const good = `merchant_id,openid,account_id,account_display\npower,${powerUser.openid},P-IMP-1,户号 1\n`;
    const applied = await powerOp.post('/admin/bindings/import', { csv: good, mode: 'apply' });
    expect(applied.text).toContain('1 linked');
    expect((await app.deps.db.query(`SELECT proof FROM bindings WHERE account_id = 'P-IMP-1'`)).rows[0]).toEqual({ proof: 'import' });
    expect((await audit('bindings.imported')).at(-1)!.detail).toMatchObject({ rows: 1, linked: 1 });
  });

  it('When a row of the audit table is edited behind the app’s back, then "verify chain" names that row', async () => {
    await rootC.get('/admin/audit');
    expect((await rootC.post('/admin/audit/verify')).text).toContain('Chain intact');
    const victim = (await app.deps.db.query<{ id: number }>(`SELECT id FROM audit_log WHERE action = 'binding.linked' ORDER BY id LIMIT 1 OFFSET 1`)).rows[0]!.id;
    await app.deps.db.query(`UPDATE audit_log SET actor = 'someone-else' WHERE id = $1`, [victim]);
    const r = await rootC.post('/admin/audit/verify');
    expect(r.text).toContain(`Chain broken at row #${victim}`);
    expect((await audit('audit.verified')).at(-1)!.detail).toMatchObject({ ok: false, brokenAt: victim });
    // A scoped account cannot run the whole-chain check (its first broken row may be another merchant's).
    expect((await powerOp.post('/admin/audit/verify')).status).toBe(403);
  });

  it('When an admin rotates keys, then a fresh password + code is asked first, and the rotation goes through the keys service and is audited', async () => {
    const stale = await makeAdmin(app, { role: 'admin' });
    const c = await signIn(app, stale);
    app.clock.advance(11 * 60_000);
    await c.get('/admin/keys');
    const before = oauthOf(app).keys.list().find((k) => k.state === 'current')!.kid;
    const gate = await c.post('/admin/keys/rotate', { mode: 'force' });
    expect(gate.location).toBe('/admin/reauth?next=%2Fadmin%2Fkeys');
    await c.get(gate.location!);
    expect((await c.post('/admin/reauth', { password: 'wrong', code: '123456', next: '/admin/keys' })).status).toBe(401);
    const ok = await c.post('/admin/reauth', { password: stale.password, code: nextCode(app, stale.totpSecret), next: '/admin/keys' });
    expect(ok.location).toContain('/admin/keys');
    await c.get('/admin/keys');
    const rotated = await c.post('/admin/keys/rotate', { mode: 'force' });
    expect(rotated.status).toBe(303);
    expect(oauthOf(app).keys.list().find((k) => k.state === 'current')!.kid).not.toBe(before);
    const row = (await audit('keys.rotated')).at(-1)!;
    expect(row.detail).toMatchObject({ mode: 'force' });
    expect(String(row.detail['before.keys'])).toContain(`${before.slice(0, 8)}:current`);
  });

  it('When an admin makes another admin, then the one-time password is shown once and the account is scoped as chosen', async () => {
    const c = await signIn(app, root);
    await c.get('/admin/admins');
    const r = await c.post('/admin/admins', { email: 'new.viewer@example.com', role: 'viewer', merchant: 'card' });
    expect(r.status).toBe(200);
    expect(r.text).toMatch(/id="one-time-password">[A-Za-z0-9_-]{20}</);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect((await app.deps.db.query(`SELECT role, merchant_id FROM admin_accounts WHERE email = 'new.viewer@example.com'`)).rows[0]).toEqual({ role: 'viewer', merchant_id: 'card' });
  });

  it('When an admin makes an OAuth client, then bad redirect URIs are refused, the secret is shown once and only its hash is kept, and another merchant’s admin cannot open it', async () => {
    const c = await signIn(app, await makeAdmin(app, { role: 'admin', merchantId: 'card' }));
    await c.get('/admin/merchants/card/clients/new');
    const bad = await c.post('/admin/merchants/card/clients', { clientId: 'card-ui-1', grantTypes: 'authorization_code', redirectUris: 'http://evil.example/cb https://ok.example/cb#frag', ttl: '600' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('must be https: http://evil.example/cb');
    expect(bad.text).toContain('no fragment');
    const made = await c.post('/admin/merchants/card/clients', { clientId: 'card-ui-1', grantTypes: 'client_credentials', scopes: 'notices:send', redirectUris: '', ttl: '600' });
    expect(made.status).toBe(200);
    const secret = /id="client-secret">([A-Za-z0-9_-]{43})</.exec(made.text)![1]!;
    const row = (await app.deps.db.query<{ secret_hash: string }>(`SELECT secret_hash FROM admin_clients WHERE client_id = 'card-ui-1'`)).rows[0]!;
    expect(row.secret_hash).not.toContain(secret);
    expect(await verifySecret(secret, row.secret_hash)).toBe(true);
    expect((await c.get('/admin/merchants/card')).text).not.toContain(secret);
    expect((await audit('clients.changed')).at(-1)!.detail).toMatchObject({ client: 'card-ui-1', op: 'created', 'after.scopes': 'notices:send' });
    const other = await signIn(app, await makeAdmin(app, { role: 'admin', merchantId: 'power' }));
    expect((await other.get('/admin/clients/card-ui-1')).status).toBe(403);
    await c.get('/admin/clients/card-ui-1');
    const replaced = await c.post('/admin/clients/card-ui-1/secret');
    const next = /id="client-secret">([A-Za-z0-9_-]{43})</.exec(replaced.text)![1]!;
    const after = (await app.deps.db.query<{ secret_hash: string }>(`SELECT secret_hash FROM admin_clients WHERE client_id = 'card-ui-1'`)).rows[0]!;
    expect(await verifySecret(secret, after.secret_hash)).toBe(false);
    expect(await verifySecret(next, after.secret_hash)).toBe(true);
  });

  it('When an operator replays an abandoned webhook event, then the webhooks service queues it again; another merchant’s operator gets 403', async () => {
    const { powerUser } = await seed(app);
    const ev = (await app.deps.db.query<{ id: string }>(`SELECT id FROM webhook_events WHERE merchant_id = 'power' AND data->>'bindingId' = $1`, [powerUser.bindingId])).rows[0]!;
    await app.deps.db.query(`UPDATE webhook_events SET status = 'abandoned', abandoned_at = now() WHERE id = $1`, [ev.id]);
    const cardOp = await signIn(app, await makeAdmin(app, { role: 'operator', merchantId: 'card' }));
    await cardOp.get('/admin/deliveries?tab=webhooks');
    expect((await cardOp.post(`/admin/webhooks/${ev.id}/replay`)).status).toBe(403);
    const page = await powerOp.get('/admin/deliveries?tab=webhooks');
    expect(page.text).toContain(`/admin/webhooks/${ev.id}/replay`);
    expect((await powerOp.post(`/admin/webhooks/${ev.id}/replay`)).status).toBe(303);
    // The app's own webhook worker may already have picked it up again: the replay count is what proves it.
    expect((await app.deps.db.query(`SELECT replays FROM webhook_events WHERE id = $1`, [ev.id])).rows[0]).toEqual({ replays: 1 });
    expect((await audit('deliveries.retried')).at(-1)!.detail).toEqual({
      webhookEvent: ev.id,
      'before.status': 'abandoned',
      'before.attempts': 0,
      'before.replays': 0,
      'after.status': 'queued',
      'after.replays': 1,
    });
  });
});

/**
 * Notice retry, delivery filters, the identity timeline and the dashboard counters over
 * real HTTP. Deliveries are written as the dispatcher leaves them (the states under test);
 * the app's own worker may pick a retried one up at once, so the audit row written in the
 * retry's transaction is what proves the move.
 */
describe('admin operations: deliveries, timeline, dashboard', { timeout: 60_000 }, () => {
  let app: AdminTestApp;
  let s: Seeded;
  let powerOp: Client;
  let powerOpAdmin: TestAdmin;
  let root: Client;
  beforeAll(async () => {
    app = await startAdminApp();
    s = await seed(app);
    powerOpAdmin = await makeAdmin(app, { role: 'operator', merchantId: 'power' });
    powerOp = await signIn(app, powerOpAdmin);
    root = await signIn(app, await makeAdmin(app, { role: 'admin' }));
  }, START_TIMEOUT);
  afterAll(async () => {
    await app?.stop();
  });

  let n = 0;
  /** A notice with one delivery in `status`, for a seeded user, created `at`. */
  async function delivery(user: { identityId: string; openid: string; bindingId: string }, merchantId: string, status: string, o: { errcode?: number; at?: Date; channel?: string } = {}): Promise<string> {
    const at = o.at ?? new Date(app.clock.now);
    const notice = await app.deps.db.query<{ id: string }>(
      `INSERT INTO notices (merchant_id, client_id, idempotency_key, request_hash, recipient, template, channel, created_at)
       VALUES ($1, 'test', $2, 'h', '{}', 'bill_due', 'template', $3) RETURNING id`,
      [merchantId, `k-${++n}-${Date.now()}`, at],
    );
    const d = await app.deps.db.query<{ id: string }>(
      `INSERT INTO notice_deliveries (notice_id, merchant_id, identity_id, binding_id, account_id, app_id, openid, status, channel, attempts, errcode, error, next_attempt_at, created_at, updated_at)
       VALUES ($1, $2, $3, $4, 'acct', $5, $6, $7, $8, 4, $9, $10, $11, $11, $11) RETURNING id`,
      [notice.rows[0]!.id, merchantId, user.identityId, user.bindingId, DEMO_ACCOUNT.appId, user.openid, status, o.channel ?? 'template', o.errcode ?? null, o.errcode ? 'refused' : null, at],
    );
    return d.rows[0]!.id;
  }
  const retried = async (id: string) =>
    (await app.deps.db.query<{ actor: string; source: string; detail: Record<string, unknown>; identity_id: string }>(
      `SELECT actor, source, detail, identity_id FROM audit_log WHERE action = 'deliveries.retried' AND detail->>'noticeDelivery' = $1`,
      [id],
    )).rows;
  const statusOf = async (id: string) => (await app.deps.db.query<{ status: string }>('SELECT status FROM notice_deliveries WHERE id = $1', [id])).rows[0]!.status;

  it('When an operator retries a failed notice delivery, then notices moves it back to the queue and the audit row says who, from where, before and after', async () => {
    const id = await delivery(s.powerUser, 'power', 'failed', { errcode: 43004 });
    const page = await powerOp.get('/admin/deliveries?tab=notices&status=failed');
    expect(page.text).toContain(`/admin/notices/deliveries/${id}/retry`);
    const r = await powerOp.post(`/admin/notices/deliveries/${id}/retry`);
    expect(r.status).toBe(303);
    expect(decodeURIComponent(r.location!)).toContain('Queued for another attempt');
    const [row, ...more] = await retried(id);
    expect(more).toHaveLength(0);
    expect(row).toMatchObject({ actor: `admin:${powerOpAdmin.id}`, identity_id: s.powerUser.identityId });
    expect(row!.source).toMatch(/^admin /);
    expect(row!.detail).toEqual({ noticeDelivery: id, 'before.status': 'failed', 'before.attempts': 4, 'before.errcode': 43004, 'before.error': 'refused', 'after.status': 'queued', 'after.attempts': 0 });
    expect(await statusOf(id)).not.toBe('failed');
  });

  it('When a delivery is not failed or unknown, then the retry is refused with its state and nothing is audited', async () => {
    const id = await delivery(s.powerUser, 'power', 'delivered');
    await powerOp.get('/admin/deliveries');
    const r = await powerOp.post(`/admin/notices/deliveries/${id}/retry`);
    expect(decodeURIComponent(r.location!)).toContain('the delivery is delivered');
    expect(await retried(id)).toHaveLength(0);
    expect(await statusOf(id)).toBe('delivered');
    expect((await powerOp.post('/admin/notices/deliveries/00000000-0000-4000-8000-000000000000/retry')).status).toBe(404);
  });

  it('When an unknown delivery is retried, then a confirmation warns of a duplicate first, and only the confirmed retry moves it', async () => {
    const id = await delivery(s.powerUser, 'power', 'unknown', { channel: 'customer-service' });
    const list = await powerOp.get('/admin/deliveries?tab=notices&status=unknown');
    expect(list.text).toContain(`href="/admin/notices/deliveries/${id}/retry"`);
    const unconfirmed = await powerOp.post(`/admin/notices/deliveries/${id}/retry`);
    expect(unconfirmed.location).toBe(`/admin/notices/deliveries/${id}/retry`);
    expect(await statusOf(id)).toBe('unknown');
    const confirm = await powerOp.get(unconfirmed.location!);
    expect(confirm.text).toContain('may already have delivered');
    expect(confirm.text).toContain('name="confirm" value="duplicate-risk"');
    expect((await powerOp.post(`/admin/notices/deliveries/${id}/retry`, { confirm: 'yes' })).status).toBe(400);
    const ok = await powerOp.post(`/admin/notices/deliveries/${id}/retry`, { confirm: 'duplicate-risk' });
    expect(ok.status).toBe(303);
    expect((await retried(id))[0]!.detail).toMatchObject({ duplicateRiskAccepted: true, 'before.status': 'unknown' });
  });

  it('When a merchant-scoped operator retries another merchant’s delivery by URL, then it is 403, audited, and nothing moves; a viewer and a missing CSRF token are refused too', async () => {
    const id = await delivery(s.cardUser, 'card', 'failed', { errcode: 43004 });
    await powerOp.get('/admin/deliveries');
    expect((await powerOp.post(`/admin/notices/deliveries/${id}/retry`)).status).toBe(403);
    expect((await powerOp.get(`/admin/notices/deliveries/${id}/retry`)).status).toBe(403);
    expect((await powerOp.get('/admin/deliveries?tab=notices')).text).not.toContain(id);
    const denied = await app.deps.db.query(`SELECT 1 FROM audit_log WHERE action = 'admin.access_denied' AND actor = $1 AND detail->>'path' = $2`, [`admin:${powerOpAdmin.id}`, `/admin/notices/deliveries/${id}/retry`]);
    expect(denied.rowCount).toBeGreaterThanOrEqual(2);
    const viewer = await signIn(app, await makeAdmin(app, { role: 'viewer' }));
    await viewer.get('/admin/deliveries');
    expect((await viewer.post(`/admin/notices/deliveries/${id}/retry`)).status).toBe(403);
    expect((await root.request('POST', `/admin/notices/deliveries/${id}/retry`, {})).status).toBe(403);
    expect(await statusOf(id)).toBe('failed');
    expect(await retried(id)).toHaveLength(0);
  });

  it('When deliveries are filtered by status, errcode, merchant and date, then only matching rows are listed; a malformed filter is a 400', async () => {
    const old = new Date(app.clock.now - 20 * 86_400_000);
    const a = await delivery(s.powerUser, 'power', 'failed', { errcode: 45047 });
    const b = await delivery(s.powerUser, 'power', 'failed', { errcode: 40003, at: old });
    const c = await delivery(s.cardUser, 'card', 'failed', { errcode: 45047 });
    const page = async (qs: string) => (await root.get(`/admin/deliveries?tab=notices&${qs}`)).text;
    const byCode = await page('errcode=45047');
    expect(byCode).toContain(a);
    expect(byCode).toContain(c);
    expect(byCode).not.toContain(b);
    const byMerchant = await page('errcode=45047&merchant=card');
    expect(byMerchant).toContain(c);
    expect(byMerchant).not.toContain(a);
    const day = (d: Date) => d.toISOString().slice(0, 10);
    const byDate = await page(`status=failed&from=${day(old)}&to=${day(old)}`);
    expect(byDate).toContain(b);
    expect(byDate).not.toContain(a);
    expect((await root.get('/admin/deliveries?errcode=%3Cscript%3E')).status).toBe(400);
    expect((await root.get('/admin/deliveries?from=2026-13-45')).status).toBe(400);
  });

  it('When a user logs in, writes, is linked and gets a notice, then the timeline shows all of it in time order, messages as metadata only, and pages without loss', async () => {
    const sandbox = app.deps.wechat.sandbox!;
    const user = sandbox.createUser({ followsApps: [DEMO_ACCOUNT.appId] });
    const openid = sandbox.openid(DEMO_ACCOUNT.appId, user.userId);
    const linking = linkingOf(app).service;
    const identity = await linking.upsertFromLogin({ appId: DEMO_ACCOUNT.appId, openid, profile: { nickname: 'timeline user', avatarUrl: '' } });
    const linked = await linking.link({ merchantId: 'card', identityId: identity.id, account: { id: 'C-TL-1', display: '**** TL1' }, proof: 'verify-api', actor: `user:${identity.id}`, source: 'web' });
    if (!linked.ok) throw new Error(linked.reason);
    await sandbox.act(DEMO_ACCOUNT.appId, user.userId, { type: 'text', content: '我的余额 secret-words-42' });
    await (app.deps.features.find((f) => f.name === 'inbox') as InboxFeature).idle();
    await app.deps.db.query(
      `INSERT INTO refresh_token_families (id, client_id, merchant_id, identity_id, binding_id, scope, auth_time, amr, expires_at, created_at)
       VALUES (gen_random_uuid(), 'card-h5', 'card', $1, $2, 'openid', now(), '{verify-api}', now() + interval '1 day', $3)`,
      [identity.id, linked.binding.id, new Date(app.clock.now)],
    );
    app.clock.advance(1_000);
    await delivery({ identityId: identity.id, openid, bindingId: linked.binding.id }, 'card', 'failed', { errcode: 43004 });
    const text = (await root.get(`/admin/identities/${identity.id}`)).text;
    const timeline = text.slice(text.indexOf('id="timeline"'));
    for (const want of ['Sent a text message', 'intent: balance', 'Signed in to a merchant app', 'client card-h5', 'Linked an account', 'Notice failed', 'errcode 43004', 'First seen'])
      expect(timeline, want).toContain(want);
    expect(text).not.toContain('secret-words-42');
    // Newest first: the notice (made last) before the link, the link before "first seen".
    expect(timeline.indexOf('Notice failed')).toBeLessThan(timeline.indexOf('Linked an account'));
    expect(timeline.indexOf('Linked an account')).toBeLessThan(timeline.indexOf('First seen'));
    // Another merchant's operator sees nothing of it.
    expect((await powerOp.get(`/admin/identities/${identity.id}`)).status).toBe(403);

    // 70 more messages: two pages, every event once, newest first.
    const record = createActivityRecorder({ db: app.deps.db, now: () => app.clock.now });
    const t0 = app.clock.now - 3600_000;
    // Recorded at once, they are written as one batch.
    await Promise.all(
      Array.from({ length: 70 }, (_, i) => record({ appId: DEMO_ACCOUNT.appId, openid, kind: 'event.CLICK', intent: `menu-${i}`, merchantId: 'card', at: new Date(t0 + Math.floor(i / 3) * 1000) })),
    );
    const first = await root.get(`/admin/identities/${identity.id}`);
    const older = /id="timeline-older" href="([^"]+)"/.exec(first.text)![1]!.replace(/&amp;/g, '&');
    const second = await root.get(older);
    const intents = (html: string) => [...html.matchAll(/intent: (menu-\d+)/g)].map((m) => m[1]!);
    const all = [...intents(first.text), ...intents(second.text)];
    expect(new Set(all).size).toBe(70);
    expect(all).toHaveLength(70);
    const order = all.map((x) => Math.floor(Number(x.slice(5)) / 3));
    expect(order).toEqual([...order].sort((a, b) => b - a));
    expect(intents(first.text).length).toBeLessThan(50);
    expect((await root.get(`/admin/identities/${identity.id}?before=yesterday`)).status).toBe(400);
  });

  it('When tokens were fetched and notices sent today, then the dashboard shows the counts and quota use per official account, and a scoped viewer of a shared account does not see them', async () => {
    const today = quotaDay(app.clock.now);
    const key = (api: string) => keyspace.wechat.callCounter(DEMO_ACCOUNT.appId, api, today);
    await app.deps.kv.incr(key('template'), 60_000, 25_000);
    await app.deps.kv.incr(key('token'), 60_000, 3);
    const tokens = Number(await app.deps.kv.get(key('token')));
    const templates = Number(await app.deps.kv.get(key('template')));
    const dash = await root.get('/admin');
    const quota = dash.text.slice(dash.text.indexOf('id="quota"'));
    expect(quota).toContain(`<span class="mono">${tokens}</span> <span class="muted small">of 500,000`);
    expect(quota).toContain(`<span class="mono">${templates}</span> <span class="muted small">of 100,000 · ${Math.round((templates / 100_000) * 1000) / 10}%`);
    expect(dash.text).toContain('Access-token fetches per quota day');
    expect(dash.text).toMatch(/Sign-ins to merchant apps · [1-9]/);
    // The demo account serves both merchants: its counts would tell one about the other.
    const scoped = await powerOp.get('/admin');
    expect(scoped.status).toBe(200);
    expect(scoped.text).toContain('shares its official account');
    expect(scoped.text).not.toContain('Access-token fetches per quota day');
  });
});
