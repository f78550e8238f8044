/**
 * The Kv contract: the same suite against every adapter this run has (memory always,
 * Redis with REDIS_URL). Keys are unique per test so a shared Redis is fine.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kv } from '../../src/store/kv.ts';
import { kvFactories } from '../helpers/stores.ts';

const k = (name: string) => `test:${randomBytes(6).toString('hex')}:${name}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(kvFactories)('Kv contract ($name)', (factory) => {
  let kv: Kv;
  beforeAll(async () => {
    kv = await factory.create();
  });
  afterAll(async () => {
    await factory.dispose(kv);
  });

  it('When a value is set, then get returns it until it expires', async () => {
    const key = k('ttl');
    await kv.set(key, 'v', 60);
    expect(await kv.get(key)).toBe('v');
    const ttl = await kv.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
    await sleep(80);
    expect(await kv.get(key)).toBeNull();
    expect(await kv.pttl(key)).toBe(-2);
  });

  it('When set without a TTL, then it does not expire and del removes it', async () => {
    const key = k('forever');
    await kv.set(key, 'v');
    expect(await kv.pttl(key)).toBe(-1);
    expect(await kv.del(key, k('absent'))).toBe(1);
    expect(await kv.get(key)).toBeNull();
  });

  it('When 50 callers race setIfAbsent on one key, then exactly one wins', async () => {
    const key = k('nx');
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => kv.setIfAbsent(key, String(i), 5000)));
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = results.indexOf(true);
    expect(await kv.get(key)).toBe(String(winner));
  });

  it('When 50 callers race getDel on one value, then exactly one gets it (single-use marker)', async () => {
    const key = k('getdel');
    await kv.set(key, 'once', 5000);
    const results = await Promise.all(Array.from({ length: 50 }, () => kv.getDel(key)));
    expect(results.filter((r) => r === 'once')).toHaveLength(1);
    expect(await kv.get(key)).toBeNull();
  });

  it('When a counter is incremented, then the TTL is set once at creation and counts add up', async () => {
    const key = k('incr');
    const values = await Promise.all(Array.from({ length: 20 }, () => kv.incr(key, 5000)));
    expect(values.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(await kv.incr(key, 5000, 5)).toBe(25);
    const ttl = await kv.pttl(key);
    expect(ttl).toBeGreaterThan(4000);
  });

  it('When a counter window expires, then it starts again from one', async () => {
    const key = k('window');
    await kv.incr(key, 40);
    await kv.incr(key, 40);
    await sleep(70);
    expect(await kv.incr(key, 40)).toBe(1);
  });

  it('When two holders race for a lock, then only one holds it and fences grow', async () => {
    const name = k('lock');
    const attempts = await Promise.all(Array.from({ length: 20 }, () => kv.tryLock(name, 5000)));
    const holders = attempts.filter((l) => l !== null);
    expect(holders).toHaveLength(1);
    const first = holders[0]!;
    expect(await first.release()).toBe(true);
    const second = await kv.tryLock(name, 5000);
    expect(second).not.toBeNull();
    expect(second!.fence).toBeGreaterThan(first.fence);
    await second!.release();
  });

  it('When a lock expires and another takes it, then the expired holder can neither release nor extend it', async () => {
    const name = k('expired');
    const old = await kv.tryLock(name, 40);
    expect(old).not.toBeNull();
    await sleep(70);
    const fresh = await kv.tryLock(name, 5000);
    expect(fresh).not.toBeNull();
    expect(await old!.release()).toBe(false);
    expect(await old!.extend(5000)).toBe(false);
    // The new holder still holds it: a third party cannot take it.
    expect(await kv.tryLock(name, 5000)).toBeNull();
    expect(await fresh!.extend(5000)).toBe(true);
    expect(await fresh!.release()).toBe(true);
    expect(await fresh!.release()).toBe(false);
  });

  it('When unicode values are stored, then they round-trip byte for byte', async () => {
    const key = k('utf8');
    const v = JSON.stringify({ nickname: '微信用户 🐼', a: '\u0000x' });
    await kv.set(key, v, 5000);
    expect(await kv.get(key)).toBe(v);
  });
});
