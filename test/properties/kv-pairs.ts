/**
 * Two Kv clients on one store, as two app instances see it: two ioredis connections with
 * the same key prefix when REDIS_URL is set, one in-process store shared otherwise. And a
 * deliberately broken store, for the properties to prove they can fail: single-use markers
 * done as read-then-write, with a gap between (what GETDEL and SET NX exist to prevent).
 */
import { randomBytes } from 'node:crypto';
import { createMemoryKv } from '../../src/store/kv-memory.ts';
import type { Kv } from '../../src/store/kv.ts';
import { REDIS_URL } from '../helpers/stores.ts';

export interface KvPair {
  name: string;
  a: Kv;
  b: Kv;
  close(): Promise<void>;
}

export async function kvPairs(): Promise<KvPair[]> {
  const memory = createMemoryKv();
  const pairs: KvPair[] = [{ name: 'memory', a: memory, b: memory, close: () => memory.close() }];
  if (REDIS_URL) {
    const { createRedisKv } = await import('../../src/store/kv-redis.ts');
    const keyPrefix = `p${randomBytes(5).toString('hex')}:`;
    const a = await createRedisKv({ url: REDIS_URL, keyPrefix });
    const b = await createRedisKv({ url: REDIS_URL, keyPrefix });
    pairs.push({ name: 'redis (two clients)', a, b, close: async () => void (await Promise.all([a.close(), b.close()])) });
  }
  return pairs;
}

const gap = () => new Promise((r) => setTimeout(r, 1));

/** The same store with getDel and setIfAbsent made non-atomic (read, pause, write). */
export function nonAtomic(kv: Kv): Kv {
  return {
    ...kv,
    async getDel(key) {
      const v = await kv.get(key);
      await gap();
      if (v !== null) await kv.del(key);
      return v;
    },
    async setIfAbsent(key, value, ttlMs) {
      if ((await kv.get(key)) !== null) return false;
      await gap();
      await kv.set(key, value, ttlMs);
      return true;
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
