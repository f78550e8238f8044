/**
 * In-process Kv for single-instance demo runs and the newcomer's `npm test`.
 * Semantics match the Redis adapter (the shared contract suite proves it); it is
 * safe only within one process, which is why production requires REDIS_URL.
 */
import { randomBytes } from 'node:crypto';
import type { Kv, KvLock } from './kv.ts';

interface Entry {
  value: string;
  expiresAt: number | null;
}

export function createMemoryKv(opts: { now?: () => number } = {}): Kv & { size(): number } {
  const now = opts.now ?? Date.now;
  const data = new Map<string, Entry>();
  const fences = new Map<string, number>();
  let closed = false;
  let sweeps = 0;

  function live(key: string): Entry | undefined {
    const e = data.get(key);
    if (!e) return undefined;
    if (e.expiresAt !== null && e.expiresAt <= now()) {
      data.delete(key);
      return undefined;
    }
    return e;
  }

  // Expired entries are dropped lazily on access and by an occasional sweep, so
  // keys never read again (de-duplication markers) do not grow memory forever.
  function maybeSweep(): void {
    if (++sweeps % 1000 !== 0) return;
    const t = now();
    for (const [k, e] of data) if (e.expiresAt !== null && e.expiresAt <= t) data.delete(k);
  }

  function put(key: string, value: string, ttlMs?: number): void {
    maybeSweep();
    data.set(key, { value, expiresAt: ttlMs === undefined ? null : now() + ttlMs });
  }

  function check(): void {
    if (closed) throw new Error('kv closed');
  }

  const kv: Kv & { size(): number } = {
    kind: 'memory',
    size: () => data.size,
    async get(key) {
      check();
      return live(key)?.value ?? null;
    },
    async set(key, value, ttlMs) {
      check();
      put(key, value, ttlMs);
    },
    async setIfAbsent(key, value, ttlMs) {
      check();
      if (live(key)) return false;
      put(key, value, ttlMs);
      return true;
    },
    async getDel(key) {
      check();
      const e = live(key);
      if (!e) return null;
      data.delete(key);
      return e.value;
    },
    async del(...keys) {
      check();
      let n = 0;
      for (const k of keys) if (live(k) && data.delete(k)) n++;
      return n;
    },
    async incr(key, ttlMs, by = 1) {
      check();
      const e = live(key);
      if (!e) {
        put(key, String(by), ttlMs);
        return by;
      }
      const n = Number(e.value);
      if (!Number.isInteger(n)) throw new Error('ERR value is not an integer or out of range');
      e.value = String(n + by);
      return n + by;
    },
    async pttl(key) {
      check();
      const e = live(key);
      if (!e) return -2;
      return e.expiresAt === null ? -1 : e.expiresAt - now();
    },
    async tryLock(name, ttlMs) {
      check();
      const key = `lock:${name}`;
      if (live(key)) return null;
      const fence = (fences.get(name) ?? 0) + 1;
      fences.set(name, fence);
      const owner = `${fence}:${randomBytes(12).toString('hex')}`;
      put(key, owner, ttlMs);
      const lock: KvLock = {
        fence,
        async release() {
          if (live(key)?.value !== owner) return false;
          data.delete(key);
          return true;
        },
        async extend(ms) {
          const e = live(key);
          if (e?.value !== owner) return false;
          e.expiresAt = now() + ms;
          return true;
        },
      };
      return lock;
    },
    async ping() {
      check();
    },
    async close() {
      closed = true;
      data.clear();
    },
  };
  return kv;
}
