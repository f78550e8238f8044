/**
 * A dependency a test can take down and bring back: PostgreSQL or Redis through the TCP
 * proxy (`tcp-proxy.ts`) when the run has real servers, or — for the embedded PGlite and
 * in-process Kv, which have no socket to cut — a wrapper that refuses every call with the
 * error the real adapters raise when their server is gone (DependencyUnavailableError).
 */
import { DependencyUnavailableError } from '../../src/http/errors.ts';
import type { Db, Transaction } from '../../src/store/db.ts';
import type { Kv } from '../../src/store/kv.ts';

export interface Switch {
  cut(): void;
  restore(): void;
  readonly down: boolean;
}

export function createSwitch(): Switch & { guard<A extends unknown[], R>(dep: 'db' | 'kv', fn: (...a: A) => Promise<R>): (...a: A) => Promise<R> } {
  let down = false;
  return {
    cut: () => void (down = true),
    restore: () => void (down = false),
    get down() {
      return down;
    },
    guard:
      (dep, fn) =>
      (...a) =>
        down ? Promise.reject(new DependencyUnavailableError(dep)) : fn(...a),
  };
}

/** The in-process Kv, refusing every call while cut (as ioredis does with Redis down). */
export function cuttableKv(inner: Kv): { kv: Kv; switch: Switch } {
  const s = createSwitch();
  const g = <A extends unknown[], R>(fn: (...a: A) => Promise<R>) => s.guard('kv', fn);
  const kv: Kv = {
    kind: inner.kind,
    get: g(inner.get),
    set: g(inner.set),
    setIfAbsent: g(inner.setIfAbsent),
    getDel: g(inner.getDel),
    del: g(inner.del),
    incr: g(inner.incr),
    pttl: g(inner.pttl),
    tryLock: g(inner.tryLock),
    ping: g(inner.ping),
    close: () => inner.close(),
  };
  return { kv, switch: s };
}

/** The embedded Db, refusing every statement while cut, inside open transactions too. */
export function cuttableDb(inner: Db): { db: Db; switch: Switch } {
  const s = createSwitch();
  const db: Db = {
    kind: inner.kind,
    query: ((sql: string, params?: readonly unknown[]) => s.guard('db', () => inner.query(sql, params))()) as Db['query'],
    exec: (sql) => s.guard('db', () => inner.exec(sql))(),
    ping: () => s.guard('db', () => inner.ping())(),
    close: () => inner.close(),
    transaction: (fn) =>
      s.guard('db', () =>
        inner.transaction((tx) => {
          const query = ((sql: string, params?: readonly unknown[]) => s.guard('db', () => tx.query(sql, params))()) as Transaction['query'];
          const guarded: Transaction = { query, exec: (sql) => s.guard('db', () => tx.exec(sql))() };
          return fn(guarded);
        }),
      )(),
  };
  return { db, switch: s };
}
