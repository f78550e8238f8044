/**
 * The Redis Kv sends the commands of one tick as one pipeline (issue #9: per-command writes
 * were the largest single cost of push ingestion). Batching must change nothing a caller
 * sees: each command keeps its own result, its order and its atomicity.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import type { Kv } from '../../src/store/kv.ts';
import { REDIS_URL } from '../helpers/stores.ts';

describe.skipIf(!REDIS_URL)('Redis Kv pipelining', () => {
  let kv: Kv & { client: Redis };
  const k = (name: string) => `pipe-test:${randomBytes(6).toString('hex')}:${name}`;
  beforeAll(async () => {
    const { createRedisKv } = await import('../../src/store/kv-redis.ts');
    kv = await createRedisKv({ url: REDIS_URL!, keyPrefix: `t${randomBytes(4).toString('hex')}:` });
  });
  afterAll(async () => {
    await kv.close();
  });

  it('When commands are issued in one tick, then they queue as one pipeline and each gets its own result', async () => {
    const keys = Array.from({ length: 20 }, (_, i) => k(`v${i}`));
    const sets = keys.map((key, i) => kv.set(key, `value-${i}`, 60_000));
    expect(kv.client.autoPipelineQueueSize).toBeGreaterThan(0);
    await Promise.all(sets);
    expect(await Promise.all(keys.map((key) => kv.get(key)))).toEqual(keys.map((_, i) => `value-${i}`));
  });

  it('When two claims of one key share a pipeline, then exactly one wins, and later commands see it', async () => {
    const key = k('claim');
    const results = await Promise.all([kv.setIfAbsent(key, 'a', 60_000), kv.setIfAbsent(key, 'b', 60_000), kv.get(key)]);
    expect(results.slice(0, 2).sort()).toEqual([false, true]);
    expect(results[2]).toBe('a');
  });

  it('When a pipeline mixes scripts and plain commands, then order per key is kept', async () => {
    const key = k('counter');
    const r = await Promise.all([kv.incr(key, 60_000), kv.incr(key, 60_000, 5), kv.get(key), kv.del(key), kv.get(key)]);
    expect(r).toEqual([1, 6, '6', 1, null]);
  });
});
