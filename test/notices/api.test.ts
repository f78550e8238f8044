/**
 * The merchant notices API end to end (DESIGN.md "Merchant API"; SECURITY.md D2): the real
 * app in demo mode, real client_credentials tokens, the mounted sandbox as WeChat and the
 * real inbox turning TEMPLATESENDJOBFINISH into `delivered`.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_ACCOUNT, DEMO_SECRETS } from '../../src/config/demo.ts';
import { setIdentityTags } from '../../src/inbox/index.ts';
import type { Sandbox } from '../../src/sandbox/sandbox.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { until } from './world.ts';

let app: TestApp;
let sandbox: Sandbox;
let card: string;
let power: string;

async function token(clientId: string, secret: string): Promise<string> {
  const r = await fetch(`${app.baseUrl}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials' }).toString(),
  });
  expect(r.status).toBe(200);
  return ((await r.json()) as { access_token: string }).access_token;
}

async function post(body: unknown, o: { key?: string | null; tok?: string | null } = {}) {
  const key = o.key === undefined ? randomBytes(8).toString('hex') : o.key;
  const tok = o.tok === undefined ? card : o.tok;
  const r = await fetch(`${app.baseUrl}/api/v1/notices`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}), ...(tok ? { authorization: `Bearer ${tok}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: r.status, headers: r.headers, json: (await r.json()) as Record<string, unknown> & { id: string; deliveries: { id: string }[] } };
}

async function get(id: string, tok = card) {
  const r = await fetch(`${app.baseUrl}/api/v1/notices/${id}`, { headers: { authorization: `Bearer ${tok}` } });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> & { deliveries: Record<string, unknown>[] } };
}

/**
 * A sandbox user who follows the demo account, linked to `account` at `merchant`, carrying
 * `tags` of that merchant, written by the tags writer itself (stored as `<merchant>:<tag>`).
 */
async function linked(account: string, o: { merchant?: string; tags?: string[] } = {}) {
  const user = sandbox.createUser({ followsApps: [DEMO_ACCOUNT.appId] });
  const openid = sandbox.openid(DEMO_ACCOUNT.appId, user.userId);
  const db = app.deps.db;
  const merchantId = o.merchant ?? 'card';
  const i = await db.query<{ id: string }>('INSERT INTO identities (app_id, openid) VALUES ($1, $2) RETURNING id', [DEMO_ACCOUNT.appId, openid]);
  const identityId = i.rows[0]!.id;
  const b = await db.query<{ id: string }>(
    `INSERT INTO bindings (merchant_id, identity_id, account_id, exclusive, proof, created_by) VALUES ($1, $2, $3, false, 'import', 'test') RETURNING id`,
    [merchantId, identityId, account],
  );
  if (o.tags) await setIdentityTags(db, { identityId, merchantId, tags: o.tags });
  return { openid, identityId, bindingId: b.rows[0]!.id };
}

const notice = (to: unknown, extra: Record<string, unknown> = {}) => ({
  to,
  template: 'payment_posted',
  data: { merchant: '信用卡中心', amount: '¥12.00', time: '2025-01-01 12:00' },
  ...extra,
});
const account = () => `6222${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  app = await startTestApp();
  sandbox = app.deps.wechat.sandbox as Sandbox;
  card = await token('card-backend', DEMO_SECRETS.cardBackend);
  power = await token('power-backend', DEMO_SECRETS.powerBackend);
});
afterAll(async () => {
  await app?.stop();
});

describe('POST /api/v1/notices', () => {
  it('When a merchant sends a notice, then it is 202 with one delivery per linked user, goes out once, and GET shows it delivered', async () => {
    const acct = account();
    const a = await linked(acct);
    const b = await linked(acct);
    const r = await post(notice({ account: acct }));
    expect(r.status).toBe(202);
    expect(r.json.deliveries).toHaveLength(2);
    expect(r.json.deliveries[0]).toMatchObject({ account: acct });
    await until(async () => ((await get(r.json.id)).json.counts as Record<string, number>).delivered === 2, 15_000, 100);
    for (const u of [a, b]) expect(sandbox.messages({ appId: DEMO_ACCOUNT.appId, openid: u.openid })).toHaveLength(1);
    const view = (await get(r.json.id)).json;
    expect(view.deliveries[0]).toMatchObject({ status: 'delivered', channel: 'template', errcode: null });
    expect(JSON.stringify(view)).not.toContain(a.openid); // openids stay ours
    const hooks = await app.deps.db.query<{ type: string; data: Record<string, unknown> }>(
      `SELECT type, data FROM webhook_events WHERE merchant_id = 'card' AND data->>'noticeId' = $1`,
      [r.json.id],
    );
    expect(hooks.rows.map((h) => h.type)).toEqual(['notice.delivered', 'notice.delivered']);
    expect(hooks.rows[0]!.data).toMatchObject({ noticeId: r.json.id, account: acct, status: 'delivered', channel: 'template' });
  });

  it('When the same Idempotency-Key comes with the same body, then the same answer comes back; with another body, 409', async () => {
    const acct = account();
    await linked(acct);
    const key = randomBytes(8).toString('hex');
    const first = await post(notice({ account: acct }), { key });
    // Same request, fields in another order: still the same request.
    const again = await post({ data: { time: '2025-01-01 12:00', amount: '¥12.00', merchant: '信用卡中心' }, template: 'payment_posted', to: { account: acct } }, { key });
    expect(again.status).toBe(202);
    expect(again.json).toEqual(first.json);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const other = await post(notice({ account: acct }, { url: 'https://h5.bank.example/bill' }), { key });
    expect(other.status).toBe(409);
    expect(other.json.error).toBe('notices.idempotency_conflict');
  });

  it('When 50 requests race with one Idempotency-Key, then there is one notice and every answer names it', async () => {
    const acct = account();
    await linked(acct);
    const key = randomBytes(8).toString('hex');
    const answers = await Promise.all(Array.from({ length: 50 }, () => post(notice({ account: acct }), { key })));
    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(202));
    expect(new Set(answers.map((a) => a.json.id)).size).toBe(1);
    const rows = await app.deps.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM notices WHERE merchant_id = 'card' AND idempotency_key = $1`, [key]);
    expect(rows.rows[0]!.n).toBe(1);
    const deliveries = await app.deps.db.query<{ n: number }>('SELECT count(*)::int AS n FROM notice_deliveries WHERE notice_id = $1', [answers[0]!.json.id]);
    expect(deliveries.rows[0]!.n).toBe(1);
  });

  it('When recipients are named by binding, sub, tag or segment, then each linked user gets exactly one delivery', async () => {
    const tag = `vip${randomBytes(3).toString('hex')}`;
    const a = await linked(account(), { tags: [tag] });
    const b = await linked(account(), { tags: [tag] });
    // A second binding of the same user: still one delivery for that user.
    await app.deps.db.query(`INSERT INTO bindings (merchant_id, identity_id, account_id, exclusive, proof, created_by) VALUES ('card', $1, $2, false, 'import', 'test')`, [a.identityId, account()]);
    const sub = `sub-${randomBytes(6).toString('hex')}`;
    await app.deps.db.query(`INSERT INTO subjects (merchant_id, identity_id, sub) VALUES ('card', $1, $2)`, [b.identityId, sub]);
    expect((await post(notice({ tag }))).json.deliveries).toHaveLength(2);
    expect((await post(notice({ binding: a.bindingId }))).json.deliveries).toMatchObject([{ bindingId: a.bindingId }]);
    expect((await post(notice({ sub }))).json.deliveries).toMatchObject([{ bindingId: b.bindingId }]);
    const all = await post(notice({ segment: 'all' }));
    const perUser = await app.deps.db.query<{ n: number }>('SELECT count(*)::int AS n FROM notice_deliveries WHERE notice_id = $1 GROUP BY identity_id HAVING count(*) > 1', [all.json.id]);
    expect(perUser.rows).toHaveLength(0);
  });

  it("When another merchant tagged a user with the same tag, then a notice to that tag does not reach them (merchant tags are the merchant's own)", async () => {
    const tag = `gold${randomBytes(3).toString('hex')}`;
    // Linked at both merchants of the demo account; only the other merchant (power) tags them.
    const theirs = await linked(account(), { merchant: 'power', tags: [tag] });
    await app.deps.db.query(`INSERT INTO bindings (merchant_id, identity_id, account_id, exclusive, proof, created_by) VALUES ('card', $1, $2, false, 'import', 'test')`, [
      theirs.identityId,
      account(),
    ]);
    const none = await post(notice({ tag }));
    expect({ status: none.status, error: none.json.error }).toEqual({ status: 422, error: 'notices.no_recipients' });

    // Once card tags a user of its own, its notice reaches exactly that user.
    const ours = await linked(account(), { tags: [tag] });
    const r = await post(notice({ tag }));
    expect(r.status).toBe(202);
    expect(r.json.deliveries).toHaveLength(1);
    const to = await app.deps.db.query<{ identity_id: string }>('SELECT identity_id FROM notice_deliveries WHERE notice_id = $1', [r.json.id]);
    expect(to.rows.map((x) => x.identity_id)).toEqual([ours.identityId]);
  });

  it.each([
    ['no Idempotency-Key', () => post(notice({ account: 'x' }), { key: null }), 400, 'request.invalid'],
    ['an unknown field', () => post({ ...notice({ account: 'x' }), priority: 'high' }), 400, 'request.invalid'],
    ['an unknown template', () => post(notice({ account: 'x' }, { template: 'nope' })), 400, 'request.invalid'],
    ['a template field missing from data', () => post(notice({ account: 'x' }, { data: { merchant: 'a' } })), 400, 'request.invalid'],
    ['no linked user', () => post(notice({ account: 'nobody-has-this' })), 422, 'notices.no_recipients'],
    ['no token', () => post(notice({ account: 'x' }), { tok: null }), 401, 'invalid_token'],
  ])('When the request has %s, then it is refused with its status and nothing is stored', async (_what, send, status, error) => {
    const before = await app.deps.db.query<{ n: number }>('SELECT count(*)::int AS n FROM notices');
    const r = await send();
    expect(r.status).toBe(status);
    expect(r.json.error).toBe(error);
    expect((await app.deps.db.query<{ n: number }>('SELECT count(*)::int AS n FROM notices')).rows[0]!.n).toBe(before.rows[0]!.n);
  });
});

describe('GET /api/v1/notices/:id', () => {
  it("When another merchant asks for a notice, then it does not exist for them (404), nor does a malformed id", async () => {
    const acct = account();
    await linked(acct);
    const r = await post(notice({ account: acct }));
    expect((await get(r.json.id, power)).status).toBe(404);
    expect((await get('not-a-uuid')).status).toBe(404);
    expect((await get(r.json.id)).status).toBe(200);
  });
});

describe('tags API then notices API (issue 6: tags usable to target notices)', () => {
  it('When a merchant tags its user through the tags API, then a notice to that tag reaches the user', async () => {
    const acct = account();
    const u = await linked(acct);
    const sub = `sub-${randomBytes(6).toString('hex')}`;
    await app.deps.db.query(`INSERT INTO subjects (merchant_id, identity_id, sub) VALUES ('card', $1, $2)`, [u.identityId, sub]);

    const tag = `vip${randomBytes(3).toString('hex')}`;
    const put = await fetch(`${app.baseUrl}/api/v1/identities/${sub}/tags`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${card}` },
      body: JSON.stringify({ tags: [tag] }),
    });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ sub, tags: [tag] });

    const r = await post(notice({ tag }));
    expect({ status: r.status, error: r.json.error }).toEqual({ status: 202, error: undefined });
    expect(r.json.deliveries).toMatchObject([{ account: acct }]);
  });
});
