/**
 * The Kv port: what wxbridge needs of Redis. Everything stored here may expire
 * (flow state, single-use markers, de-duplication, token cache, locks, rate limits);
 * Postgres stays the source of truth. Two adapters: ioredis (`kv-redis.ts`) and an
 * in-process store for single-instance demo runs (`kv-memory.ts`). The same contract
 * suite (`kv.contract.ts`) runs against both.
 */

export interface KvLock {
  /** Monotonic fencing token: a later holder of the same lock always has a larger one. */
  readonly fence: number;
  /** Releases only if this holder still owns the lock (compare-and-delete). */
  release(): Promise<boolean>;
  /** Extends the lease only if this holder still owns the lock. */
  extend(ttlMs: number): Promise<boolean>;
}

export interface Kv {
  readonly kind: 'redis' | 'memory';
  get(key: string): Promise<string | null>;
  /** Sets a value; `ttlMs` omitted keeps it until deleted. */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /** Atomic set-if-absent (SET NX PX). True when this call stored the value. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  /** Atomic get-and-delete (GETDEL): the basis of every single-use marker. */
  getDel(key: string): Promise<string | null>;
  del(...keys: string[]): Promise<number>;
  /** Increments by `by` (default 1); the TTL is set when the key is created. */
  incr(key: string, ttlMs: number, by?: number): Promise<number>;
  /** Remaining time to live in ms; -1 no expiry; -2 no key. */
  pttl(key: string): Promise<number>;
  /** Try once to take a lock for `ttlMs`; null when someone else holds it. */
  tryLock(name: string, ttlMs: number): Promise<KvLock | null>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
