/**
 * Enqueue → first attempt (issue 7 target: p99 ≤ 250 ms): workers in other processes are
 * woken by the enqueue's NOTIFY instead of waiting for their next poll, and the start of
 * the first call to WeChat is recorded where the benchmark reads it.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createAnnouncer, NOTICES_CHANNEL } from '../../src/notices/deliveries.queries.ts';
import { sharedWorld, until } from './world.ts';

const world = sharedWorld();

const TEMPLATE = '/cgi-bin/message/template/send';
const calls = (appId: string, path: string) => world().sandbox.calls(path).filter((c) => c.appId === appId);

async function times(id: string) {
  const r = await world().db.query<{ first_attempt_at: Date | null; claimed_at: Date | null; sent_at: Date | null }>(
    'SELECT first_attempt_at, claimed_at, sent_at FROM notice_deliveries WHERE id = $1',
    [id],
  );
  return r.rows[0]!;
}

describe('enqueue → first attempt', () => {
  it('When a delivery is retried after -1, then first_attempt_at keeps the start of the first call, before the first answer', async () => {
    const s = await world().scenario();
    const u = await s.link();
    world().sandbox.inject({ path: TEMPLATE, appId: s.appId, errcode: -1, count: 2 });
    const n = await s.notice({ to: { account: u.account } });
    await s.settle();
    const d = (await s.deliveries(n.id))[0]!;
    expect(d).toMatchObject({ status: 'delivered', attempts: 3 });
    const t = await times(d.id);
    const wx = calls(s.appId, TEMPLATE);
    expect(wx.map((c) => c.errcode)).toEqual([-1, -1, 0]);
    expect(t.first_attempt_at).not.toBeNull();
    // Started before WeChat saw the first call; the last claim (third attempt) came later.
    expect(t.first_attempt_at!.getTime()).toBeLessThanOrEqual(wx[0]!.at);
    expect(t.first_attempt_at!.getTime()).toBeLessThan(t.claimed_at!.getTime());
    expect(t.first_attempt_at!.getTime()).toBeLessThan(t.sent_at!.getTime());
  });

  it('When a delivery ends without any call to WeChat, then first_attempt_at stays empty', async () => {
    const s = await world().scenario();
    const u = await s.link();
    const n = await s.notice({ to: { account: u.account }, channel: 'customer-service', template: undefined, text: 'hello' });
    await s.settle();
    const d = (await s.deliveries(n.id))[0]!;
    expect(d).toMatchObject({ status: 'failed', error: 'window_closed', attempts: 0 });
    expect((await times(d.id)).first_attempt_at).toBeNull();
    expect(world().sandbox.calls('/cgi-bin/message/custom/send').filter((c) => c.appId === s.appId)).toHaveLength(0);
  });

  it('When a notice is enqueued by another process, then an idle worker claims it on the NOTIFY, long before its next poll', async (ctx) => {
    if (world().db.kind !== 'pg') ctx.skip(); // LISTEN/NOTIFY across processes needs PostgreSQL
    const s = await world().scenario({ options: { pollMs: 60_000 } });
    const u = await s.link();
    // This feature's service never calls the dispatcher below in process: only the database can wake it.
    const dispatcher = s.makeFeature().createDispatcher();
    dispatcher.start();
    try {
      await new Promise((r) => setTimeout(r, 300)); // its first claim found nothing; it sleeps for a minute
      const t0 = Date.now();
      const n = await s.notice({ to: { account: u.account } });
      await until(async () => ['sent', 'delivered'].includes((await s.deliveries(n.id))[0]!.status), 5_000);
      expect(Date.now() - t0).toBeLessThan(5_000);
      expect(calls(s.appId, TEMPLATE)).toHaveLength(1);
    } finally {
      await dispatcher.stop();
    }
  });

  it('When the LISTEN connection is cut by the server, then it comes back by itself, wakes once on return, and NOTIFY works again', async (ctx) => {
    if (world().db.kind !== 'pg' || !world().db.listen) ctx.skip();
    const channel = `t_${randomBytes(6).toString('hex')}`;
    let wakes = 0;
    const stop = world().db.listen!(channel, () => wakes++);
    try {
      const listener = async () =>
        (await world().db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE query = $1', [`LISTEN ${channel}`])).rows[0]?.pid;
      await until(async () => (await listener()) !== undefined && wakes === 1, 5_000); // connected: one wake-up on (re)connect
      await world().db.query(`SELECT pg_notify($1, '')`, [channel]);
      await until(async () => wakes === 2, 5_000);
      const pid = await listener();
      await world().db.query('SELECT pg_terminate_backend($1)', [pid]);
      await until(async () => ((await listener()) ?? pid) !== pid && wakes === 3, 10_000);
      await world().db.query(`SELECT pg_notify($1, '')`, [channel]);
      await until(async () => wakes === 4, 5_000);
    } finally {
      await stop();
    }
    expect(wakes).toBe(4);
  });

  it('When enqueues come while a NOTIFY is in flight, then they share one more NOTIFY (not one each), and a failed one is reported', async () => {
    const sent: { sql: string; params: readonly unknown[] | undefined }[] = [];
    const answers: (() => void)[] = [];
    let fail = false;
    const q = {
      query: (sql: string, params?: readonly unknown[]) => {
        sent.push({ sql, params });
        return new Promise<{ rows: never[]; rowCount: number }>((resolve, reject) => answers.push(() => (fail ? reject(new Error('db down')) : resolve({ rows: [], rowCount: 0 }))));
      },
    };
    const errors: unknown[] = [];
    const announce = createAnnouncer(q, (err) => errors.push(err));
    announce();
    for (let i = 0; i < 50; i++) announce();
    expect(sent).toHaveLength(1);
    expect(sent[0]!.params).toEqual([NOTICES_CHANNEL, '']);
    answers.shift()!();
    await until(async () => sent.length === 2, 1_000);
    fail = true;
    answers.shift()!();
    await until(async () => errors.length === 1, 1_000);
    expect(sent).toHaveLength(2); // nothing came while the second was in flight
    announce();
    expect(sent).toHaveLength(3);
  });
});
