/**
 * Opens the two stores the config asks for: real PostgreSQL/Redis when their URLs are
 * set, the embedded stand-ins otherwise. A server that is not reachable at start is a
 * clear, named error (the caller exits non-zero), never a half-started process.
 */
import { join } from 'node:path';
import { DependencyUnavailableError } from '../http/errors.ts';
import type { Db } from './db.ts';
import type { Kv } from './kv.ts';

export type { Db, Queryable, Transaction } from './db.ts';
export type { Kv, KvLock } from './kv.ts';

export class StoreStartError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'StoreStartError';
  }
}

export async function openDb(opts: { databaseUrl?: string; dataDir: string; inMemory?: boolean }): Promise<Db> {
  if (opts.databaseUrl) {
    const { createPgDb } = await import('./db-pg.ts');
    try {
      return await createPgDb({ url: opts.databaseUrl });
    } catch (err) {
      throw new StoreStartError(`PostgreSQL at DATABASE_URL (${redactUrl(opts.databaseUrl)}) is not reachable: ${rootMessage(err)}`, err);
    }
  }
  const { createPgliteDb } = await import('./db-pglite.ts');
  return createPgliteDb(opts.inMemory ? {} : { dataDir: join(opts.dataDir, 'pgdata') });
}

export async function openKv(opts: { redisUrl?: string }): Promise<Kv> {
  if (opts.redisUrl) {
    const { createRedisKv } = await import('./kv-redis.ts');
    try {
      return await createRedisKv({ url: opts.redisUrl });
    } catch (err) {
      throw new StoreStartError(`Redis at REDIS_URL (${redactUrl(opts.redisUrl)}) is not reachable: ${rootMessage(err)}`, err);
    }
  }
  const { createMemoryKv } = await import('./kv-memory.ts');
  return createMemoryKv();
}

/** Never print a password from a connection string. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

function rootMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof DependencyUnavailableError && e.cause) e = e.cause;
  if (e instanceof AggregateError && e.errors[0]) e = e.errors[0];
  return e instanceof Error ? e.message || e.name : String(e);
}
