/**
 * Webhook delivery (DESIGN.md "Webhooks"; SECURITY.md A9; issue 7): the outbox written in
 * the change's transaction, Standard Webhooks signatures checked with the maintained
 * `standardwebhooks` library as a merchant would, exponential retries inside the window,
 * every attempt logged, abandoned events replayed, and at-least-once across a killed worker.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileConfigSchema } from '../../src/config/schema.ts';
import type { Db } from '../../src/store/db.ts';
import { migrate } from '../../src/store/migrate.ts';
import { enqueueWebhookEvent } from '../../src/webhooks/events.ts';
import { createWebhooksFeature, type WebhooksFeature } from '../../src/webhooks/index.ts';
import { primaryDb } from '../helpers/stores.ts';
import { listen, until } from '../notices/world.ts';

interface Received {
  headers: Record<string, string>;
  body: string;
  at: number;
}

let db: Db;
let merchant: Awaited<ReturnType<typeof listen>>;
const received = new Map<string, Received[]>();
/** Per merchant path: the statuses to answer, in order (then 200); 'hang' never answers. */
const script = new Map<string, (number | 'hang')[]>();

beforeAll(async () => {
  db = await primaryDb.create();
  await migrate(db);
  merchant = await listen((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      const list = received.get(path) ?? [];
      list.push({ headers: req.headers as Record<string, string>, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      received.set(path, list);
      const next = script.get(path)?.shift() ?? 200;
      if (next === 'hang') return;
      res.statusCode = next;
      if (next === 302) res.setHeader('location', `${merchant.url}/elsewhere`);
      res.end('ok');
    });
  });
});
afterAll(async () => {
  await merchant?.close();
  if (db) await primaryDb.dispose(db);
});

const fast = { pollMs: 10, leaseMs: 1_500, timeoutMs: 400, maintainEveryMs: 100, backoff: { baseMs: 40, capMs: 160 }, windowMs: 1_200 };

/** A merchant of its own (fresh id and endpoint) and a webhooks feature that knows it. */
function setup(o: { secret?: string; webhook?: boolean; options?: Partial<typeof fast> } = {}) {
  const id = `m-${randomBytes(4).toString('hex')}`;
  const path = `/hooks/${id}?token=merchant-own-token`;
  const secret = o.secret ?? `secret-${randomBytes(8).toString('hex')}`;
  const file = fileConfigSchema.parse({
    officialAccounts: [{ id: 'oa', appId: 'wx0123456789abcdef', appSecret: 'app-secret-1234', token: 'tok123', originalId: 'gh_0123456789' }],
    merchants: [{ id, name: 'M', officialAccount: 'oa', linking: [{ type: 'binding-code' }], ...(o.webhook === false ? {} : { webhook: { url: `${merchant.url}${path}`, secret } }) }],
  });
  const feature: WebhooksFeature = createWebhooksFeature({ db, log: pino({ level: 'silent' }), config: file, options: { ...fast, ...o.options } });
  const enqueue = (data: Record<string, unknown> = { bindingId: randomBytes(4).toString('hex') }) =>
    db.transaction((tx) => enqueueWebhookEvent(tx, { merchantId: id, type: 'binding.created', data }));
  const got = () => received.get(path) ?? [];
  const status = async (eventId: string) => (await feature.service.getEvent(eventId))?.status;
  return { id, path, secret, feature, enqueue, got, status };
}

async function run(f: WebhooksFeature, cond: () => Promise<boolean>, timeoutMs = 8_000) {
  const sender = f.createSender();
  sender.start();
  try {
    await until(cond, timeoutMs);
  } finally {
    await sender.stop();
  }
}

describe('webhook delivery', () => {
  it('When a change commits an event, then the merchant gets it once, signed the Standard Webhooks way, and the attempt is logged', async () => {
    const m = setup();
    const eventId = await m.enqueue({ bindingId: 'b-1', account: '6222***1234' });
    await run(m.feature, async () => (await m.status(eventId)) === 'sent');
    expect(m.got()).toHaveLength(1);
    const [req] = m.got();
    const payload = new Webhook(Buffer.from(m.secret, 'utf8').toString('base64')).verify(req!.body, req!.headers) as Record<string, unknown>;
    expect(payload).toMatchObject({ id: eventId, type: 'binding.created', data: { bindingId: 'b-1', account: '6222***1234' } });
    expect(req!.headers['webhook-id']).toBe(eventId);
    expect(req!.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    const attempts = await m.feature.service.listAttempts(eventId);
    expect(attempts).toMatchObject([{ attempt: 1, statusCode: 200, outcome: 'sent', error: null }]);
    // The merchant's query string (its own token) is never stored.
    expect(attempts[0]!.endpoint).toBe(`${merchant.url}/hooks/${m.id}`);
  });

  it('When the secret is a whsec_ key, then it is used as the scheme defines and verifies with the library defaults', async () => {
    const key = `whsec_${randomBytes(24).toString('base64')}`;
    const m = setup({ secret: key });
    const eventId = await m.enqueue();
    await run(m.feature, async () => (await m.status(eventId)) === 'sent');
    const [req] = m.got();
    expect(() => new Webhook(key).verify(req!.body, req!.headers)).not.toThrow();
    expect(() => new Webhook(`whsec_${randomBytes(24).toString('base64')}`).verify(req!.body, req!.headers)).toThrow();
  });

  it('When the transaction that wrote the event rolls back, then nothing is ever sent', async () => {
    const m = setup();
    await db
      .transaction(async (tx) => {
        await enqueueWebhookEvent(tx, { merchantId: m.id, type: 'binding.revoked', data: {} });
        throw new Error('the change failed');
      })
      .catch(() => undefined);
    const sent = m.enqueue();
    const eventId = await sent;
    await run(m.feature, async () => (await m.status(eventId)) === 'sent');
    expect(m.got().map((r) => JSON.parse(r.body).type)).toEqual(['binding.created']);
  });

  it('When the merchant fails twice, then it is retried with growing delays and every attempt is logged', async () => {
    // A window a loaded machine cannot spend before the third attempt.
    const m = setup({ options: { windowMs: 5_000 } });
    script.set(m.path, [500, 503]);
    const eventId = await m.enqueue();
    await run(m.feature, async () => (await m.status(eventId)) === 'sent');
    const attempts = await m.feature.service.listAttempts(eventId);
    expect(attempts.map((a) => [a.statusCode, a.outcome])).toEqual([
      [500, 'retry'],
      [503, 'retry'],
      [200, 'sent'],
    ]);
    // Lower bounds only (a busy machine makes every gap longer): the second wait is at least
    // 0.8 × 80 ms, more than the first can be scheduled for (1.2 × 40 ms), so the delays grow.
    const at = m.got().map((r) => r.at);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(0.8 * fast.backoff.baseMs - 2);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(0.8 * 2 * fast.backoff.baseMs - 2);
    expect(new Set(m.got().map((r) => r.headers['webhook-id']))).toEqual(new Set([eventId]));
  });

  it('When the merchant answers with a redirect or too late, then the attempt fails and is retried; redirects are not followed', async () => {
    const m = setup({ options: { windowMs: 5_000 } });
    script.set(m.path, [302, 'hang']);
    const eventId = await m.enqueue();
    await run(m.feature, async () => (await m.status(eventId)) === 'sent');
    const attempts = await m.feature.service.listAttempts(eventId);
    expect(attempts.map((a) => a.error)).toEqual(['http_302', 'timeout', null]);
    expect(received.get('/elsewhere')).toBeUndefined();
  });

  it('When the merchant stays down past the retry window, then the event is abandoned; a replay delivers it once it is back', async () => {
    const m = setup();
    script.set(m.path, Array(50).fill(500));
    const eventId = await m.enqueue();
    await run(m.feature, async () => (await m.status(eventId)) === 'abandoned');
    const failed = await m.feature.service.listAttempts(eventId);
    expect(failed.length).toBeGreaterThanOrEqual(3);
    expect(failed.at(-1)).toMatchObject({ outcome: 'abandoned', statusCode: 500 });
    script.set(m.path, []);
    expect(await m.feature.service.replay({ eventId, merchantId: 'someone-else' })).toBe('not_found');
    expect(await m.feature.service.replay({ eventId })).toBe('replayed');
    expect(await m.feature.service.replay({ eventId })).toBe('in_progress');
    await run(m.feature, async () => (await m.status(eventId)) === 'sent');
    expect((await m.feature.service.getEvent(eventId))).toMatchObject({ status: 'sent', replays: 1, attempts: failed.length + 1 });
    expect(m.got().at(-1)!.headers['webhook-id']).toBe(eventId);
  });

  it('When a worker dies mid-attempt, then after its lease another worker delivers the event again with the same webhook-id', async () => {
    // A retry window longer than the lease: a lost attempt past the window abandons the event.
    const m = setup({ options: { windowMs: 10_000 } });
    script.set(m.path, ['hang']);
    const eventId = await m.enqueue();
    const doomed = m.feature.createSender();
    doomed.start();
    await until(async () => m.got().length === 1, 5_000, 5);
    doomed.abandon();
    await run(m.feature, async () => (await m.status(eventId)) === 'sent');
    expect(m.got().map((r) => r.headers['webhook-id'])).toEqual([eventId, eventId]);
    // The second request waited for the lease, not for an outcome the dead worker wrote.
    expect(m.got()[1]!.at - m.got()[0]!.at).toBeGreaterThanOrEqual(fast.leaseMs - 100);
    // The lost attempt counts (it may have reached the merchant) and is in the log.
    expect(await m.feature.service.listAttempts(eventId)).toMatchObject([
      { attempt: 1, outcome: 'retry', error: 'lease_expired', statusCode: null, endpoint: `${merchant.url}/hooks/${m.id}` },
      { attempt: 2, outcome: 'sent', statusCode: 200 },
    ]);
  });

  it('When the merchant has no webhook configured, then its events are abandoned without a request', async () => {
    const m = setup({ webhook: false });
    const eventId = await m.enqueue();
    await run(m.feature, async () => (await m.status(eventId)) === 'abandoned');
    expect((await m.feature.service.getEvent(eventId))?.lastError).toBe('no webhook configured');
    expect(await m.feature.service.listAttempts(eventId)).toEqual([]);
  });
});
