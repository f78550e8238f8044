/**
 * Quotas, pauses, quiet hours and the per-user cap (issue 7 "Rate and quota awareness",
 * "Quiet hours"; wechat-protocol.md §8, §9; SECURITY.md T6: 0 calls after 45009). The clock
 * is injected where the rule is about time; the sandbox counts the calls.
 */
import { describe, expect, it } from 'vitest';
import { nextMinute, nextQuotaDay } from '../../src/notices/schedule.ts';
import { sharedWorld } from './world.ts';

const world = sharedWorld();

const TEMPLATE = '/cgi-bin/message/template/send';
const calls = (appId: string) => world().sandbox.calls(TEMPLATE).filter((c) => c.appId === appId);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A clock the test moves; it starts at `iso`. */
function clock(iso: string) {
  let t = Date.parse(iso);
  return { now: () => t, set: (iso2: string) => void (t = Date.parse(iso2)), add: (ms: number) => void (t += ms) };
}

/** Runs a dispatcher for a while without waiting for the queue to drain. */
async function runFor(d: { start(): void; stop(): Promise<void> }, ms: number) {
  d.start();
  await sleep(ms);
  await d.stop();
}

describe('daily quota (45009)', () => {
  it('When the template quota runs out, then that account makes no further template call until the quota day ends, on any worker', async () => {
    world().sandbox.setLimits({ templateDailyLimit: 3 });
    try {
      const s = await world().scenario({ options: { concurrency: 1 } });
      const u = await s.link();
      for (let i = 0; i < 6; i++) await s.notice({ to: { account: u.account } });
      await runFor(s.feature.createDispatcher(), 500);
      const answered = calls(s.appId).map((c) => c.errcode);
      expect(answered).toEqual([0, 0, 0, 45009]);
      const rows = await s.deliveries();
      const waiting = rows.filter((r) => r.status === 'queued');
      expect(waiting).toHaveLength(3);
      for (const r of waiting) expect(r.next_attempt_at.getTime()).toBe(nextQuotaDay(Date.now()));
      expect(rows.find((r) => r.errcode === 45009)).toMatchObject({ status: 'queued', attempts: 0 });

      // Another worker (a fresh process: nothing in memory) learns the pause from the Kv.
      const n = await s.notice({ to: { account: u.account } });
      await runFor(s.makeFeature().createDispatcher(), 300);
      expect(calls(s.appId)).toHaveLength(4);
      expect((await s.deliveries(n.id))[0]!.next_attempt_at.getTime()).toBe(nextQuotaDay(Date.now()));
    } finally {
      world().sandbox.setLimits({ templateDailyLimit: 100_000 });
    }
  });
});

describe('minute quota (45011)', () => {
  it('When WeChat says 45011, then the account pauses until the next minute and the notices go out after it', async () => {
    const c = clock('2025-03-01T04:00:20.000Z');
    const s = await world().scenario({ now: c.now, options: { concurrency: 1 } });
    const u = await s.link();
    world().sandbox.inject({ path: TEMPLATE, appId: s.appId, errcode: 45011, count: 1 });
    for (let i = 0; i < 3; i++) await s.notice({ to: { account: u.account } });
    await runFor(s.feature.createDispatcher(), 300);
    expect(calls(s.appId).map((x) => x.errcode)).toEqual([45011]);
    const rows = await s.deliveries();
    for (const r of rows) expect(r.next_attempt_at.getTime()).toBe(nextMinute(c.now()));
    c.set('2025-03-01T04:01:00.500Z');
    await s.settle();
    expect((await s.deliveries()).map((r) => r.status)).toEqual(['delivered', 'delivered', 'delivered']);
    expect(calls(s.appId).map((x) => x.errcode)).toEqual([45011, 0, 0, 0]);
  });
});

describe('quiet hours', () => {
  const quietHours = { start: '22:00', end: '08:00', timeZone: 'Asia/Shanghai' };

  it('When a notice arrives in quiet hours, then it waits until they end and goes out after', async () => {
    const c = clock('2025-03-01T15:30:00.000Z'); // 23:30 in Shanghai
    const s = await world().scenario({ now: c.now, notices: { quietHours } });
    const u = await s.link();
    const n = await s.notice({ to: { account: u.account } });
    await runFor(s.feature.createDispatcher(), 200);
    const [d] = await s.deliveries(n.id);
    expect(d).toMatchObject({ status: 'queued' });
    expect(d!.next_attempt_at.toISOString()).toBe('2025-03-02T00:00:00.000Z'); // 08:00 in Shanghai
    expect(calls(s.appId)).toHaveLength(0);
    c.set('2025-03-02T00:00:01.000Z');
    await s.settle();
    expect((await s.deliveries(n.id))[0]).toMatchObject({ status: 'delivered' });
  });

  it('When quiet hours begin while a notice waits in the queue, then the worker holds it back too', async () => {
    const c = clock('2025-03-01T13:59:59.000Z'); // 21:59:59 in Shanghai
    const s = await world().scenario({ now: c.now, notices: { quietHours } });
    const u = await s.link();
    const n = await s.notice({ to: { account: u.account } });
    c.set('2025-03-01T14:30:00.000Z');
    await runFor(s.feature.createDispatcher(), 200);
    expect((await s.deliveries(n.id))[0]!.next_attempt_at.toISOString()).toBe('2025-03-02T00:00:00.000Z');
    expect(calls(s.appId)).toHaveLength(0);
  });
});

describe('per-user daily cap', () => {
  it('When a user has had perUserDailyCap notices today, then the next one fails with daily_cap and other users are unaffected', async () => {
    const s = await world().scenario({ notices: { perUserDailyCap: 2 } });
    const capped = await s.link();
    const other = await s.link();
    for (let i = 0; i < 3; i++) await s.notice({ to: { account: capped.account } });
    await s.notice({ to: { account: other.account } });
    await s.settle();
    const rows = await s.deliveries();
    expect(rows.filter((r) => r.openid === capped.openid).map((r) => r.status).sort()).toEqual(['delivered', 'delivered', 'failed']);
    expect(rows.find((r) => r.status === 'failed')).toMatchObject({ error: 'daily_cap', attempts: 0 });
    expect(rows.find((r) => r.openid === other.openid)).toMatchObject({ status: 'delivered' });
    expect(world().sandbox.messages({ appId: s.appId, openid: capped.openid })).toHaveLength(2);
  });

  it('When the first notice of the day went out after a dropped answer, then with perUserDailyCap 1 the second one fails with daily_cap', async () => {
    const s = await world().scenario({ notices: { perUserDailyCap: 1 } });
    const u = await s.link();
    // WeChat commits the template, its answer is lost: ambiguous, retried under the same
    // client_msg_id without taking the cap again, so the first count must not be given back.
    world().sandbox.inject({ path: TEMPLATE, appId: s.appId, dropAfterCommit: true, count: 1 });
    const first = await s.notice({ to: { account: u.account } });
    await s.settle();
    expect((await s.deliveries(first.id))[0]).toMatchObject({ status: 'delivered' });
    expect(world().sandbox.messages({ appId: s.appId, openid: u.openid })).toHaveLength(1);

    const second = await s.notice({ to: { account: u.account } });
    await s.settle();
    expect((await s.deliveries(second.id))[0]).toMatchObject({ status: 'failed', error: 'daily_cap' });
    expect(world().sandbox.messages({ appId: s.appId, openid: u.openid })).toHaveLength(1);
  });

  it('When a send waits after -1 (nothing reached the user), then its count is given back and the retry takes it again', async () => {
    const s = await world().scenario({ notices: { perUserDailyCap: 2 } });
    const u = await s.link();
    world().sandbox.inject({ path: TEMPLATE, appId: s.appId, errcode: -1, count: 1 });
    for (let i = 0; i < 3; i++) await s.notice({ to: { account: u.account } });
    await s.settle();
    const rows = await s.deliveries();
    expect(rows.map((r) => r.status).sort()).toEqual(['delivered', 'delivered', 'failed']);
    expect(rows.find((r) => r.status === 'failed')).toMatchObject({ error: 'daily_cap' });
    expect(world().sandbox.messages({ appId: s.appId, openid: u.openid })).toHaveLength(2);
  });
});

describe('shared limiter', () => {
  it('When the account allows 5 sends a second, then 12 notices are spread over at least three seconds', async () => {
    const s = await world().scenario({ options: { ratePerSecond: 5 } });
    const u = await s.link();
    for (let i = 0; i < 12; i++) await s.notice({ to: { account: u.account } });
    // The limiter counts reservations per second; the sandbox sees arrivals, which trail them
    // by the first token fetch and the call. Start at the top of a second, so that the first
    // five do not arrive in the next second and make two seconds look like one (a flake).
    await sleep(1000 - (Date.now() % 1000));
    await s.settle();
    expect(world().sandbox.messages({ appId: s.appId })).toHaveLength(12);
    const seconds = new Set(calls(s.appId).map((c) => Math.floor(c.at / 1000)));
    expect(seconds.size).toBeGreaterThanOrEqual(3);
  });
});
