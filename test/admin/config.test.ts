/**
 * Merchants and official accounts made and edited in the admin UI (issue 8): through the
 * real pages, against the real app. Checked each time: the response, what is stored (the
 * secrets sealed, never in the clear), the audit row (secrets only as set / replaced), the
 * live config of this instance and of a second instance sharing the database and Kv, and
 * who may do what (admin; merchant-scoped admin on its own merchant only; CSRF).
 * Plus the OAuth clients made on a merchant's page: the secret shown once, stored hashed.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueWebhookEvent, verifySigned } from '../../src/webhooks/index.ts';
import type { NoticesFeature } from '../../src/notices/index.ts';
import { effectiveConfig } from '../../src/config/overlay.ts';
import { verifySecret } from '../../src/security/secrets.ts';
import { demoConfigFile, freePort, startTestApp, type TestApp } from '../helpers/app.ts';
import { makeAdmin, signIn, START_TIMEOUT, startAdminApp, type AdminTestApp, type Client } from './helpers.ts';

const APP_SECRET = 'ui-app-secret-7f3a9c2e51d0';
const PUSH_TOKEN = 'uiPushToken42x';
const AES_KEY = 'Qz8bR7kLm9QpZ3vN8sT1uY4cF6hJ0dG5aE2iK7oP3qB';
const VERIFY_SECRET = 'ui-verify-secret-c0ffee99';
const WEBHOOK_SECRET = 'ui-webhook-secret-5ea7be11';

let n = 0;
const uniq = () => `${Date.now().toString(36)}${++n}`;
const appIdOf = (s: string) => `wx${s.padEnd(16, '0').slice(0, 16)}`;

function accountFields(p: { id: string; appId: string; version?: number; secrets?: boolean }): Record<string, string> {
  return {
    id: p.id,
    appId: p.appId,
    originalId: 'gh_ui0123456789',
    tokenMethod: 'stable',
    appSecret: p.secrets === false ? '' : APP_SECRET,
    token: p.secrets === false ? '' : PUSH_TOKEN,
    encodingAesKey: p.secrets === false ? '' : AES_KEY,
    version: String(p.version ?? 0),
  };
}

function merchantFields(p: { id: string; name: string; account: string; version?: number; secrets?: boolean; verifyUrl?: string; webhookUrl?: string }): Record<string, string> {
  return {
    id: p.id,
    name: p.name,
    officialAccount: p.account,
    profile: 'base',
    maxAccountsPerUser: '3',
    exclusive: 'on',
    channel: 'auto',
    verifyEnabled: 'on',
    verifyUrl: p.verifyUrl ?? 'https://merchant.example/verify',
    verifySecret: p.secrets === false ? '' : VERIFY_SECRET,
    verifyTimeoutMs: '2000',
    codeEnabled: 'on',
    codeTtlSeconds: '600',
    webhookUrl: p.webhookUrl ?? 'https://merchant.example/hooks',
    webhookSecret: p.secrets === false ? '' : WEBHOOK_SECRET,
    version: String(p.version ?? 0),
  };
}

const noSecretIn = (html: string) => {
  for (const s of [APP_SECRET, PUSH_TOKEN, AES_KEY, VERIFY_SECRET, WEBHOOK_SECRET]) expect(html).not.toContain(s);
};

describe('admin: merchants and official accounts in the UI', { timeout: 90_000 }, () => {
  let app: AdminTestApp;
  let other: TestApp;
  let admin: Client;

  beforeAll(async () => {
    app = await startAdminApp();
    // A second instance of the same deployment: same database, same Kv.
    other = await startTestApp({ overrides: { db: app.deps.db, kv: app.deps.kv, configPollMs: 500 } });
    admin = await signIn(app, await makeAdmin(app, { role: 'admin' }));
  }, START_TIMEOUT);
  afterAll(async () => {
    await other?.stop();
    await app?.stop();
  });

  const rows = async (id: string) =>
    (await app.deps.db.query<{ kind: string; doc: Record<string, unknown>; secrets_sealed: string; version: number }>('SELECT kind, doc, secrets_sealed, version FROM admin_config_items WHERE id = $1', [id])).rows;
  const auditOf = async (id: string) =>
    (await app.deps.db.query<{ actor: string; source: string; merchant_id: string | null; detail: Record<string, unknown> }>(`SELECT actor, source, merchant_id, detail FROM audit_log WHERE action = 'merchants.changed' AND detail->>'id' = $1 ORDER BY id`, [id])).rows;

  it('When an admin creates an official account and a merchant on it, then both apply at once here and within seconds on the other instance, with secrets sealed and never shown', async () => {
    const u = uniq();
    const oa = `oa-${u}`;
    const mid = `shop-${u}`;
    const appId = appIdOf(u);
    await admin.get('/admin/official-accounts/new');
    const r1 = await admin.post('/admin/official-accounts', accountFields({ id: oa, appId }));
    expect(r1.status).toBe(303);
    await admin.get('/admin/merchants/new');
    const r2 = await admin.post('/admin/merchants', merchantFields({ id: mid, name: 'UI Shop', account: oa }));
    expect(r2.status).toBe(303);
    expect(r2.location).toBe(`/admin/merchants/${mid}?done=${encodeURIComponent(`Merchant ${mid} created.`)}`);

    // This instance: at once, as the schema reads it (defaults filled in).
    const m = app.deps.config.merchants.find((x) => x.id === mid);
    expect(m).toMatchObject({ name: 'UI Shop', officialAccount: oa, binding: { maxAccountsPerUser: 3, exclusive: true }, webhook: { url: 'https://merchant.example/hooks', secret: WEBHOOK_SECRET } });
    expect(m?.linking.map((l) => l.type)).toEqual(['verify-api', 'binding-code']);
    expect(app.deps.wechat.accountByAppId(appId)).toMatchObject({ id: oa, appSecret: APP_SECRET, token: PUSH_TOKEN, encodingAesKey: AES_KEY });

    // The other instance: within a few seconds, without a restart; its features see it.
    await expect.poll(() => other.deps.config.merchants.some((x) => x.id === mid), { timeout: 8_000, interval: 200 }).toBe(true);
    expect(other.deps.wechat.accountById(oa)?.appSecret).toBe(APP_SECRET);
    expect((await fetch(`${other.baseUrl}/link/${mid}`, { redirect: 'manual' })).status).not.toBe(404);
    expect((await fetch(`${other.baseUrl}/link/nope-${u}`, { redirect: 'manual' })).status).toBe(404);
    // Notices know the new merchant on both instances (a start-time directory would say "cannot send").
    for (const t of [app, other]) {
      const notices = (t.deps.features.find((f) => f.name === 'notices') as NoticesFeature).service;
      const send = notices.createNotice({ merchantId: mid, clientId: 'c', idempotencyKey: `k-${u}`, request: { to: { account: 'a' }, template: 'nope', data: {}, channel: 'auto' } });
      await expect(send).rejects.toMatchObject({ code: 'request.invalid', publicMessage: "template: unknown template 'nope'" });
    }

    // Stored: the non-secret fields in the clear, the secrets only sealed.
    const [acc] = await rows(oa);
    expect(acc?.doc).toMatchObject({ appId, originalId: 'gh_ui0123456789' });
    for (const s of [APP_SECRET, PUSH_TOKEN, AES_KEY]) {
      expect(JSON.stringify(acc?.doc)).not.toContain(s);
      expect(acc?.secrets_sealed).not.toContain(s);
    }
    const [mer] = await rows(mid);
    expect(JSON.stringify(mer)).not.toContain(VERIFY_SECRET);
    expect(JSON.stringify(mer)).not.toContain(WEBHOOK_SECRET);

    // Pages: "set", never the value.
    const list = await admin.get('/admin/merchants');
    expect(list.text).toContain(mid);
    expect(list.text).toContain('made here');
    noSecretIn(list.text);
    const edit = await admin.get(`/admin/official-accounts/${oa}`);
    expect(edit.status).toBe(200);
    expect(edit.text).toContain('leave empty to keep the current one');
    noSecretIn(edit.text);
    noSecretIn((await admin.get(`/admin/merchants/${mid}/edit`)).text);
    noSecretIn((await admin.get(`/admin/merchants/${mid}`)).text);

    // Audited: who, from where, what; secrets as "set".
    const [a] = await auditOf(mid);
    expect(a).toMatchObject({ merchant_id: mid, detail: { kind: 'merchant', op: 'created', 'after.name': 'UI Shop', 'after.webhook.secret': 'set', 'after.linking.verify-api.secret': 'set' } });
    expect(a?.actor).toMatch(/^admin:/);
    expect(a?.source).toMatch(/^admin /);
    noSecretIn(JSON.stringify(await auditOf(oa)));
  });

  it('When an admin edits a file merchant leaving secrets empty, then the edit overlays the file, the secrets are kept, the audit shows only what changed, and going back restores the file', async () => {
    const fileCard = app.deps.config.merchants.find((m) => m.id === 'card')!;
    const page = await admin.get('/admin/merchants/card/edit');
    expect(page.status).toBe(200);
    expect(page.text).toContain('name="version" value="0"');
    const verify = fileCard.linking.find((l) => l.type === 'verify-api')!;
    const fields: Record<string, string> = { ...merchantFields({ id: 'card', name: 'Card (edited)', account: fileCard.officialAccount, secrets: false }), verifyUrl: verify.url, webhookUrl: fileCard.webhook!.url };
    // The form shows what the file has: keep its linking methods and profile.
    for (const l of fileCard.linking) if (l.type === 'oidc') Object.assign(fields, { oidcEnabled: 'on', oidcIssuer: l.issuer, oidcClientId: l.clientId, oidcScope: l.scope, oidcAccountClaim: l.accountClaim, oidcDisplayClaim: l.displayClaim ?? '' });
    const code = fileCard.linking.find((l) => l.type === 'binding-code');
    if (code) fields.codeTtlSeconds = String(code.ttlSeconds);
    else delete fields.codeEnabled;
    Object.assign(fields, { profile: fileCard.profile, maxAccountsPerUser: String(fileCard.binding.maxAccountsPerUser), verifyTimeoutMs: String((verify as { timeoutMs: number }).timeoutMs) });
    if (!fileCard.binding.exclusive) delete fields.exclusive;
    const r = await admin.post('/admin/merchants/card', fields);
    expect(r.status).toBe(303);
    const card = app.deps.config.merchants.find((m) => m.id === 'card')!;
    expect(card.name).toBe('Card (edited)');
    expect(card.webhook?.secret).toBe(fileCard.webhook!.secret);
    expect(card.linking.find((l) => l.type === 'verify-api')).toMatchObject({ secret: (verify as { secret: string }).secret });
    // The file's clients still apply (they never go into the overlay).
    expect(card.clients.map((c) => c.clientId)).toEqual(fileCard.clients.map((c) => c.clientId));
    const [row] = await rows('card');
    expect(row?.doc.clients).toBeUndefined();
    expect((await admin.get('/admin/merchants')).text).toContain('config file, edited here');
    const [a] = (await auditOf('card')).slice(-1);
    expect(a?.detail).toMatchObject({ op: 'overlaid', 'before.name': fileCard.name, 'after.name': 'Card (edited)' });
    expect(Object.fromEntries(Object.entries(a!.detail).filter(([k]) => k.startsWith('after.')))).toEqual({ 'after.name': 'Card (edited)' });

    // A second save from the same (now stale) form is refused: someone saved in between.
    const stale = await admin.post('/admin/merchants/card', { ...fields, name: 'Card (stale)' });
    expect(stale.status).toBe(409);
    expect(app.deps.config.merchants.find((m) => m.id === 'card')?.name).toBe('Card (edited)');

    await expect.poll(() => other.deps.config.merchants.find((m) => m.id === 'card')?.name, { timeout: 8_000, interval: 200 }).toBe('Card (edited)');
    const back = await admin.post('/admin/config/merchant/card/revert', { version: '1' });
    expect(back.status).toBe(303);
    expect(app.deps.config.merchants.find((m) => m.id === 'card')?.name).toBe(fileCard.name);
    expect(await rows('card')).toEqual([]);
    await expect.poll(() => other.deps.config.merchants.find((m) => m.id === 'card')?.name, { timeout: 8_000, interval: 200 }).toBe(fileCard.name);
  });

  it('When a merchant’s webhook is set and then its secret replaced in the UI, then the running senders deliver to that URL signed with the current secret', async () => {
    const got: { headers: Record<string, string>; body: string }[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        got.push({ headers: req.headers as Record<string, string>, body: Buffer.concat(chunks).toString('utf8') });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
      const u = uniq();
      const mid = `hook-${u}`;
      const made = await admin.post('/admin/merchants', { ...merchantFields({ id: mid, name: 'Hooked', account: 'demo' }), webhookUrl: url });
      expect(made.status).toBe(303);
      const send = () => app.deps.db.transaction((tx) => enqueueWebhookEvent(tx, { merchantId: mid, type: 'binding.created', data: { bindingId: uniq() } }));
      await send();
      await expect.poll(() => got.length, { timeout: 10_000, interval: 100 }).toBe(1);
      expect(() => verifySigned(WEBHOOK_SECRET, got[0]!.body, got[0]!.headers)).not.toThrow();

      const replaced = 'replaced-webhook-secret-0042';
      const saved = await admin.post(`/admin/merchants/${mid}`, { ...merchantFields({ id: mid, name: 'Hooked', account: 'demo', version: 1, secrets: false }), webhookUrl: url, webhookSecret: replaced });
      expect(saved.status).toBe(303);
      // Both instances run a sender; give the other one time to see the change too.
      await expect.poll(() => other.deps.config.merchants.find((m) => m.id === mid)?.webhook?.secret, { timeout: 8_000, interval: 100 }).toBe(replaced);
      await send();
      await expect.poll(() => got.length, { timeout: 10_000, interval: 100 }).toBe(2);
      expect(() => verifySigned(replaced, got[1]!.body, got[1]!.headers)).not.toThrow();
      expect(() => verifySigned(WEBHOOK_SECRET, got[1]!.body, got[1]!.headers)).toThrow();
    } finally {
      server.close();
    }
  });

  it('When a secret is replaced, then the new one applies, the old EncodingAESKey stays as the previous one, and the audit says "replaced"', async () => {
    const u = uniq();
    const oa = `oa-${u}`;
    await admin.post('/admin/official-accounts', accountFields({ id: oa, appId: appIdOf(u) }));
    const newKey = 'N'.repeat(43);
    const r = await admin.post(`/admin/official-accounts/${oa}`, { ...accountFields({ id: oa, appId: appIdOf(u), version: 1, secrets: false }), encodingAesKey: newKey, appSecret: 'another-app-secret-1234' });
    expect(r.status).toBe(303);
    expect(app.deps.config.officialAccounts.find((a) => a.id === oa)).toMatchObject({ appSecret: 'another-app-secret-1234', token: PUSH_TOKEN, encodingAesKey: newKey, previousEncodingAesKey: AES_KEY });
    const [, changed] = await auditOf(oa);
    expect(changed?.detail).toMatchObject({ op: 'updated', 'before.appSecret': 'set', 'after.appSecret': 'replaced', 'after.encodingAesKey': 'replaced', 'after.previousEncodingAesKey': 'set' });
    expect(JSON.stringify(changed)).not.toContain('another-app-secret-1234');
    expect(JSON.stringify(changed)).not.toContain(newKey);
  });

  it('When the input breaks a rule of the config file, then nothing is saved and the form says which field (400), without echoing a secret', async () => {
    const u = uniq();
    const bad = await admin.post('/admin/official-accounts', { ...accountFields({ id: `oa-${u}`, appId: 'not-an-appid' }) });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('appId: must look like wx followed by 16 characters');
    noSecretIn(bad.text);
    const noSecret = await admin.post('/admin/official-accounts', accountFields({ id: `oa-${u}`, appId: appIdOf(u), secrets: false }));
    expect(noSecret.status).toBe(400);
    expect(noSecret.text).toContain('appSecret: required');
    const unknownAccount = await admin.post('/admin/merchants', merchantFields({ id: `shop-${u}`, name: 'X', account: 'nope' }));
    expect(unknownAccount.status).toBe(400);
    expect(unknownAccount.text).toContain('unknown official account');
    noSecretIn(unknownAccount.text);
    const dupAppId = await admin.post('/admin/official-accounts', accountFields({ id: `oa2-${u}`, appId: app.deps.config.officialAccounts[0]!.appId }));
    expect(dupAppId.status).toBe(400);
    expect(dupAppId.text).toContain('duplicate appId');
    const taken = await admin.post('/admin/merchants', merchantFields({ id: 'card', name: 'X', account: 'demo' }));
    expect(taken.status).toBe(409);
    expect(await rows(`oa-${u}`)).toEqual([]);
    expect(await rows(`shop-${u}`)).toEqual([]);
  });

  it('When a form is posted without its CSRF token, then it is refused (403) and nothing changes', async () => {
    const u = uniq();
    const r = await admin.request('POST', '/admin/official-accounts', accountFields({ id: `oa-${u}`, appId: appIdOf(u) }));
    expect(r.status).toBe(403);
    const r2 = await admin.request('POST', '/admin/merchants/card', { ...merchantFields({ id: 'card', name: 'Forged', account: 'demo' }), _csrf: 'forged' });
    expect(r2.status).toBe(403);
    expect(await rows(`oa-${u}`)).toEqual([]);
    expect(app.deps.config.merchants.find((m) => m.id === 'card')?.name).not.toBe('Forged');
  });

  it('When a merchant-scoped admin acts, then it edits its own merchant (not its official account), and everything else is refused (403) and audited', async () => {
    const scoped = await makeAdmin(app, { role: 'admin', merchantId: 'power' });
    const c = await signIn(app, scoped);
    const list = await c.get('/admin/merchants');
    expect(list.text).not.toContain('/admin/merchants/card"');
    expect(list.text).not.toContain('New merchant');
    expect(list.text).not.toContain('New official account');
    expect((await c.get('/admin/merchants/card/edit')).status).toBe(403);
    expect((await c.post('/admin/merchants/card', merchantFields({ id: 'card', name: 'Hijacked', account: 'demo' }))).status).toBe(403);
    expect((await c.get('/admin/merchants/new')).status).toBe(403);
    expect((await c.post('/admin/merchants', merchantFields({ id: `x-${uniq()}`, name: 'X', account: 'demo' }))).status).toBe(403);
    expect((await c.get('/admin/official-accounts/demo')).status).toBe(403);
    expect((await c.post('/admin/config/official_account/demo/revert', { version: '1' })).status).toBe(403);
    expect(app.deps.config.merchants.find((m) => m.id === 'card')?.name).not.toBe('Hijacked');
    const denied = await app.deps.db.query(`SELECT 1 FROM audit_log WHERE actor = $1 AND action = 'admin.access_denied'`, [`admin:${scoped.id}`]);
    expect(denied.rowCount).toBeGreaterThanOrEqual(5);

    // Its own merchant: yes, but the official account stays (it is shared with others).
    const u = uniq();
    const oa = `oa-${u}`;
    await admin.post('/admin/official-accounts', accountFields({ id: oa, appId: appIdOf(u) }));
    const power = app.deps.config.merchants.find((m) => m.id === 'power')!;
    const page = await c.get('/admin/merchants/power/edit');
    expect(page.status).toBe(200);
    expect(page.text).not.toContain('<select id="officialAccount"');
    const fields: Record<string, string> = { ...merchantFields({ id: 'power', name: 'Power (scoped edit)', account: oa, secrets: false }), verifyUrl: 'https://power.example/verify', verifySecret: VERIFY_SECRET };
    fields.webhookUrl = power.webhook?.url ?? '';
    const r = await c.post('/admin/merchants/power', fields);
    expect(r.status).toBe(303);
    const after = app.deps.config.merchants.find((m) => m.id === 'power')!;
    expect(after.name).toBe('Power (scoped edit)');
    expect(after.officialAccount).toBe(power.officialAccount);
    const [row] = await rows('power');
    await admin.post('/admin/config/merchant/power/revert', { version: String(row!.version) });
    expect(app.deps.config.merchants.find((m) => m.id === 'power')?.name).toBe(power.name);
  });

  it('When a viewer or an operator opens the forms, then they are refused (403); the list is readable', async () => {
    for (const role of ['viewer', 'operator'] as const) {
      const c = await signIn(app, await makeAdmin(app, { role }));
      expect((await c.get('/admin/merchants')).status).toBe(200);
      expect((await c.get('/admin/merchants/card/edit')).status).toBe(403);
      expect((await c.get('/admin/official-accounts/new')).status).toBe(403);
      expect((await c.post('/admin/merchants/card', merchantFields({ id: 'card', name: 'Nope', account: 'demo' }))).status).toBe(403);
    }
  });

  it('When the sign-in is not recent, then the forms ask for the password and a code again first', async () => {
    const c = await signIn(app, await makeAdmin(app, { role: 'admin' }));
    app.clock.advance(app.admin.policy.reauthMs + 60_000);
    const r = await c.get('/admin/merchants/new');
    expect(r.status).toBe(303);
    expect(r.location).toBe(`/admin/reauth?next=${encodeURIComponent('/admin/merchants/new')}`);
  });
});

describe('admin: merchant endpoints in a production deployment (outbound policy)', { timeout: 90_000 }, () => {
  let app: AdminTestApp;
  let admin: Client;
  beforeAll(async () => {
    const port = await freePort();
    const publicUrl = `http://localhost:${port}`;
    const file = demoConfigFile(publicUrl, { outbound: { allowPrivateNetworks: false } });
    app = await startAdminApp({ env: { PORT: String(port), PUBLIC_URL: publicUrl, BRIDGE_CONFIG: file } });
    admin = await signIn(app, await makeAdmin(app, { role: 'admin' }));
  }, START_TIMEOUT);
  afterAll(async () => {
    await app?.stop();
  });

  it('When an admin points a merchant endpoint at a private address, then the save is refused naming the field, and nothing is stored', async () => {
    const u = uniq();
    const bad = await admin.post('/admin/merchants', merchantFields({ id: `shop-${u}`, name: 'Shop', account: 'demo', webhookUrl: 'https://169.254.169.254/latest', verifyUrl: 'https://localhost/verify' }));
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('webhook.url: 169.254.169.254 is not a public address');
    expect(bad.text).toContain('linking.verify-api.url: localhost resolves to');
    expect((await app.deps.db.query('SELECT 1 FROM admin_config_items WHERE id = $1', [`shop-${u}`])).rows).toEqual([]);
    const good = await admin.post('/admin/merchants', merchantFields({ id: `shop-${u}`, name: 'Shop', account: 'demo' }));
    expect(good.status).toBe(303);
  });
});

describe('admin: OAuth clients made on a merchant page', { timeout: 90_000 }, () => {
  let app: AdminTestApp;
  let admin: Client;
  beforeAll(async () => {
    app = await startAdminApp();
    admin = await signIn(app, await makeAdmin(app, { role: 'admin' }));
  }, START_TIMEOUT);
  afterAll(async () => app?.stop());

  const stored = async (id: string) =>
    (await app.deps.db.query<{ secret_hash: string; grant_types: string[]; redirect_uris: string[]; scopes: string[]; disabled_at: Date | null }>('SELECT secret_hash, grant_types, redirect_uris, scopes, disabled_at FROM admin_clients WHERE client_id = $1', [id])).rows[0];

  it('When a client is made, then its secret is shown once, only a hash is stored, and it can be edited and disabled', async () => {
    const id = `ui-client-${uniq()}`;
    await admin.get('/admin/merchants/card/clients/new');
    const made = await admin.post('/admin/merchants/card/clients', { clientId: id, grantTypes: 'client_credentials', scopes: 'bindings:read', redirectUris: '', ttl: '600' });
    expect(made.status).toBe(200);
    const secret = /id="client-secret">([^<]+)</.exec(made.text)?.[1];
    expect(secret).toBeTruthy();
    const row = await stored(id);
    expect(row?.secret_hash).not.toContain(secret!);
    expect(await verifySecret(secret!, row!.secret_hash)).toBe(true);
    // Never again: not on the merchant page, not on the client's page.
    expect((await admin.get('/admin/merchants/card')).text).not.toContain(secret!);
    const page = await admin.get(`/admin/clients/${id}`);
    expect(page.text).not.toContain(secret!);

    const edit = await admin.post(`/admin/clients/${id}`, { grantTypes: 'authorization_code', scopes: 'openid', redirectUris: 'https://app.example/cb\nhttp://localhost:8080/cb', ttl: '900' });
    expect(edit.status).toBe(303);
    expect(await stored(id)).toMatchObject({ grant_types: ['authorization_code'], redirect_uris: ['https://app.example/cb', 'http://localhost:8080/cb'], scopes: ['openid'], disabled_at: null });

    const badUri = await admin.post(`/admin/clients/${id}`, { grantTypes: 'authorization_code', scopes: 'openid', redirectUris: 'http://app.example/cb', ttl: '900' });
    expect(badUri.status).toBe(400);
    expect(badUri.text).toContain('must be https');

    await admin.get(`/admin/clients/${id}`);
    const off = await admin.post(`/admin/clients/${id}`, { grantTypes: 'client_credentials', scopes: 'bindings:read', redirectUris: '', ttl: '600', disabled: 'on' });
    expect(off.status).toBe(303);
    expect((await stored(id))?.disabled_at).toBeInstanceOf(Date);
    const audit = await app.deps.db.query<{ detail: Record<string, unknown> }>(`SELECT detail FROM audit_log WHERE action = 'clients.changed' AND detail->>'client' = $1 ORDER BY id`, [id]);
    expect(audit.rows.map((r) => r.detail.op)).toEqual(['created', 'updated', 'updated']);
    expect(JSON.stringify(audit.rows)).not.toContain(secret!);
  });
});

describe('config overlay: the effective config', () => {
  it('When an overlay breaks a cross-reference of the file, then the whole config is refused with the place of the problem', () => {
    const file = { officialAccounts: [], merchants: [] };
    const res = effectiveConfig(file, [{ kind: 'merchant', id: 'm', doc: { id: 'm', name: 'M', officialAccount: 'ghost', linking: [{ type: 'binding-code' }] } }]);
    expect(res.ok).toBe(false);
    expect(!res.ok && res.problems.map((p) => p.path.join('.'))).toEqual(expect.arrayContaining(['officialAccounts', 'merchants.0.officialAccount']));
  });
});
