/**
 * The shared limiter and pauses (issue 7 "a shared limiter across workers"): two governors
 * stand for two worker processes on one Kv (Redis when REDIS_URL is set).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createGovernor } from '../../src/notices/governor.ts';
import { keyspace } from '../../src/store/keyspace.ts';
import type { Kv } from '../../src/store/kv.ts';
import { kvFactories } from '../helpers/stores.ts';
import { until } from './world.ts';

describe.each(kvFactories)('governor over $name Kv', (factory) => {
  let kv: Kv;
  beforeAll(async () => {
    kv = await factory.create();
  });
  afterAll(async () => {
    await factory.dispose(kv);
  });

  const app = () => `wx${randomBytes(8).toString('hex')}`;

  it('When two workers reserve in the same second, then together they get no more than the account allows', async () => {
    let t = 1_700_000_000_100;
    const now = () => t;
    const a = createGovernor({ kv, now, ratePerSecond: 5 });
    const b = createGovernor({ kv, now, ratePerSecond: 5 });
    const appId = app();
    expect(await a.reserve(appId, 4)).toBe(4);
    expect(await b.reserve(appId, 4)).toBe(1);
    expect(await a.reserve(appId, 1)).toBe(0);
    t += 1_000;
    expect(await b.reserve(appId, 7)).toBe(5);
  });

  it('When one worker pauses an API, then another sees the pause until it ends, and the other API is not paused', async () => {
    let t = 1_700_000_000_000;
    const now = () => t;
    const a = createGovernor({ kv, now, ratePerSecond: 5 });
    const b = createGovernor({ kv, now, ratePerSecond: 5 });
    const appId = app();
    await a.pause(appId, 'template', t + 60_000, 45011);
    expect(a.pausedLocally(appId, 'template')).toBe(t + 60_000);
    expect(b.pausedLocally(appId, 'template')).toBe(0);
    expect(await b.pausedUntil(appId, 'template')).toBe(t + 60_000);
    expect(await b.pausedUntil(appId, 'custom')).toBe(0);
    t += 60_001;
    expect(await b.pausedUntil(appId, 'template')).toBe(0);
  });

  it('When the daily cap is reached, then nothing more is counted, and a refund frees a place', async () => {
    const g = createGovernor({ kv, now: Date.now, ratePerSecond: 5 });
    const user = randomBytes(4).toString('hex');
    expect(await g.takeDaily('m', user, '2025-01-01', 2)).toBe(true);
    expect(await g.takeDaily('m', user, '2025-01-01', 2)).toBe(true);
    expect(await g.takeDaily('m', user, '2025-01-01', 2)).toBe(false);
    await g.refundDaily('m', user, '2025-01-01');
    expect(await g.takeDaily('m', user, '2025-01-01', 2)).toBe(true);
    expect(await g.takeDaily('m', user, '2025-01-02', 2)).toBe(true);
  });

  it('When sends are counted across Beijing midnight, then each lands on its own quota day (wechat-protocol.md §9)', async () => {
    // 2025-01-01 15:59:59.900 UTC is 23:59:59.900 in Beijing; 100 ms later is the next quota day.
    let t = Date.UTC(2025, 0, 1, 15, 59, 59, 900);
    const g = createGovernor({ kv, now: () => t, ratePerSecond: 5 });
    const appId = app();
    g.countCall(appId, 'template');
    g.countCall(appId, 'template');
    t += 100;
    g.countCall(appId, 'template');
    t -= 24 * 3600_000; // a clock stepped back a day still counts on its own day
    g.countCall(appId, 'template');
    const key = (day: string) => keyspace.wechat.callCounter(appId, 'template', day);
    await until(async () => (await kv.get(key('2025-01-02'))) === '1', 3_000);
    expect(await kv.get(key('2025-01-01'))).toBe('3');
  });
});
