/**
 * Kv over Redis (ioredis). Fail fast, never hang (SECURITY.md D1): no offline queue,
 * a bounded command timeout, one attempt per command. While Redis is down every call
 * rejects with DependencyUnavailableError('kv') at once; ioredis keeps reconnecting in
 * the background, so the process recovers without a restart when Redis returns.
 *
 * The command timeout is a `withDeadline` (deadline.ts): ioredis's own 500 ms timer failed
 * commands whose replies had arrived while a loaded machine stalled the event loop (the
 * 503s of test/linking/concurrency.test.ts). It is 1 s, the most SECURITY.md D1 allows for
 * a server that hangs; a server that is gone is still refused at once (status check). ioredis
 * keeps a longer timer only as a backstop that clears commands a hung server never answers.
 * `kvStats()` reports the slowest round trips seen, to tell a slow server from a busy process.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { DependencyUnavailableError } from '../http/errors.ts';
import { withDeadline } from './deadline.ts';
import type { Kv, KvLock } from './kv.ts';

// Compare-and-delete / compare-and-extend: an expired holder can never release or
// extend the lock a newer holder took (the value carries the owner's fence + nonce).
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
const EXTEND = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
// INCRBY and set the TTL only when the key was created by this call.
const INCR_TTL = `local v = redis.call('incrby', KEYS[1], ARGV[1]) if v == tonumber(ARGV[1]) then redis.call('pexpire', KEYS[1], ARGV[2]) end return v`;

const FENCE = `local v = redis.call('incr', KEYS[1]) redis.call('pexpire', KEYS[1], ARGV[1]) return v`;
const FENCE_TTL_MS = 30 * 24 * 3600_000;

export interface RedisKvStats {
  commands: number;
  /** Round trips slower than 250 ms, and the slowest (ms), as this process saw them. */
  slow: number;
  maxMs: number;
  timedOut: number;
}

export interface RedisKvOptions {
  url: string;
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Prefix on every key (ioredis keyPrefix): isolates tests sharing one server. */
  keyPrefix?: string;
}

export async function createRedisKv(opts: RedisKvOptions): Promise<Kv & { client: Redis; kvStats(): RedisKvStats }> {
  const commandTimeoutMs = opts.commandTimeoutMs ?? 1000;
  const stats: RedisKvStats = { commands: 0, slow: 0, maxMs: 0, timedOut: 0 };
  const client = new Redis(opts.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: Math.max(5_000, commandTimeoutMs * 4),
    connectTimeout: opts.connectTimeoutMs ?? 1000,
    // Reconnect forever with a short capped delay, so recovery is quick (≤ 1 s).
    retryStrategy: (times) => Math.min(50 * times, 1000),
    enableReadyCheck: true,
    // Commands issued in the same tick (a push's claim beside other requests' writes) leave
    // in one socket write and one read: per-command syscalls were the largest single cost
    // of push ingestion under load (issue #9). Order per connection is unchanged.
    enableAutoPipelining: true,
    ...(opts.keyPrefix ? { keyPrefix: opts.keyPrefix } : {}),
  });
  client.on('error', () => {
    /* surfaced per command as DependencyUnavailableError; readiness reports it */
  });
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw new DependencyUnavailableError('kv', err);
  }

  async function run<T>(fn: () => Promise<T>): Promise<T> {
    if (client.status !== 'ready') throw new DependencyUnavailableError('kv');
    const t0 = performance.now();
    stats.commands += 1;
    try {
      return await withDeadline(fn(), commandTimeoutMs, () => {
        stats.timedOut += 1;
        return new Error(`Redis did not answer within ${commandTimeoutMs} ms`);
      });
    } catch (err) {
      if (isRedisReplyError(err)) throw err;
      throw new DependencyUnavailableError('kv', err);
    } finally {
      const ms = performance.now() - t0;
      if (ms > 250) stats.slow += 1;
      stats.maxMs = Math.max(stats.maxMs, Math.round(ms));
    }
  }

  const kv: Kv & { client: Redis; kvStats(): RedisKvStats } = {
    kind: 'redis',
    client,
    kvStats: () => ({ ...stats }),
    get: (key) => run(() => client.get(key)),
    async set(key, value, ttlMs) {
      await run(() => (ttlMs === undefined ? client.set(key, value) : client.set(key, value, 'PX', ttlMs)));
    },
    async setIfAbsent(key, value, ttlMs) {
      const r = await run(() => client.set(key, value, 'PX', ttlMs, 'NX'));
      return r === 'OK';
    },
    getDel: (key) => run(() => client.getdel(key)),
    del: (...keys) => (keys.length ? run(() => client.del(...keys)) : Promise.resolve(0)),
    async incr(key, ttlMs, by = 1) {
      const r = await run(() => client.eval(INCR_TTL, 1, key, String(by), String(ttlMs)));
      return Number(r);
    },
    pttl: (key) => run(() => client.pttl(key)),
    async tryLock(name, ttlMs) {
      const key = `lock:${name}`;
      // The fence counter lives 30 days past its last use: long enough to stay monotonic
      // for any live lock, short enough that one-off lock names do not accumulate.
      const fence = Number(await run(() => client.eval(FENCE, 1, `lock-fence:${name}`, String(FENCE_TTL_MS))));
      const owner = `${fence}:${randomBytes(12).toString('hex')}`;
      const ok = await run(() => client.set(key, owner, 'PX', ttlMs, 'NX'));
      if (ok !== 'OK') return null;
      const lock: KvLock = {
        fence,
        release: async () => Number(await run(() => client.eval(RELEASE, 1, key, owner))) === 1,
        extend: async (ms) => Number(await run(() => client.eval(EXTEND, 1, key, owner, String(ms)))) === 1,
      };
      return lock;
    },
    async ping() {
      await run(() => client.ping());
    },
    async close() {
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    },
  };
  return kv;
}

function isRedisReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError';
}
