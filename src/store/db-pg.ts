/**
 * Db over a `pg` Pool. Bounded everywhere (SECURITY.md D1): waiting for a free connection
 * gives up after `poolWaitMs` (pool-gate.ts), connecting after `connectTimeoutMs`,
 * statements after `statementTimeoutMs`; a lost server turns into
 * DependencyUnavailableError('db') at once (for those waiting too), and the pool reconnects
 * by itself when the server returns, so no restart is needed.
 */
import pg from 'pg';
import { DependencyUnavailableError } from '../http/errors.ts';
import type { Db, QueryResult, Transaction } from './db.ts';
import { createPoolGate, type PoolGateStats } from './pool-gate.ts';

export interface PgDbOptions {
  url: string;
  max?: number;
  /** Opening a connection to the server; also how soon a down server is noticed (1 s). */
  connectTimeoutMs?: number;
  /** Waiting for a connection while all `max` are busy: load, not an outage (5 s). */
  poolWaitMs?: number;
  /** Requests allowed to wait at once; more are refused at once with 503 (1,000). */
  maxWaiting?: number;
  statementTimeoutMs?: number;
  /** Schema to use (search_path); tests isolate themselves in a schema of their own. */
  schema?: string;
}

// int8 as a JS number, as PGlite returns it. 64-bit identifiers that may exceed 2^53
// (WeChat msgid) are stored as text, never int8.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
};

export async function createPgDb(opts: PgDbOptions): Promise<Db & { pool: pg.Pool; poolStats(): PoolGateStats }> {
  const max = opts.max ?? 10;
  const gate = createPoolGate({ max, waitMs: opts.poolWaitMs ?? 5000, maxWaiting: opts.maxWaiting ?? 1000 });
  const pool = new pg.Pool({
    connectionString: opts.url,
    max,
    // With a permit in hand the pool always has room: this bounds connecting only.
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 1000,
    statement_timeout: opts.statementTimeoutMs ?? 5000,
    query_timeout: (opts.statementTimeoutMs ?? 5000) + 500,
    idleTimeoutMillis: 30_000,
    types,
    ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
  });
  // An idle client losing its server must not crash the process.
  pool.on('error', () => undefined);

  const wrap = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      // Whoever waits would meet the same dead server, one connect timeout each.
      gate.failWaiting(err);
      throw new DependencyUnavailableError('db', err);
    }
  };

  /** Runs `fn` holding one of the `max` permits. */
  const gated = async <T>(fn: () => Promise<T>): Promise<T> => {
    await gate.acquire();
    try {
      return await fn();
    } finally {
      gate.release();
    }
  };

  const query = <T>(q: Pick<pg.Pool, 'query'> | pg.PoolClient, sql: string, params?: readonly unknown[]) =>
    wrap(async (): Promise<QueryResult<T>> => {
      const r = await q.query(sql, params as unknown[] | undefined);
      return { rows: r.rows as T[], rowCount: r.rowCount ?? 0 };
    });

  const db: Db & { pool: pg.Pool; poolStats(): PoolGateStats } = {
    kind: 'pg',
    pool,
    poolStats: () => gate.stats(),
    query: (sql, params) => gated(() => query(pool, sql, params)),
    transaction: (fn) => gated(() => runTransaction(fn)),
    exec: (sql) => gated(() => wrap(async () => void (await pool.query(sql)))),
    ping: () => gated(async () => void (await query(pool, 'SELECT 1'))),
    async close() {
      gate.failWaiting(new Error('the database pool is closing'));
      await Promise.all([...listeners].map((stop) => stop()));
      await pool.end();
    },
    listen(channel, onNotify) {
      const stop = listenOn(opts, channel, onNotify);
      const unlisten = async () => {
        listeners.delete(unlisten);
        await stop();
      };
      listeners.add(unlisten);
      return unlisten;
    },
  };
  const listeners = new Set<() => Promise<void>>();

  async function runTransaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const client = await wrap(() => pool.connect());
    // A connection lost between two statements makes a checked-out client emit 'error',
    // which nobody else listens to: it would crash the process. The next statement fails
    // with the cause instead, and the transaction rolls back (test/failure/dependencies).
    const onLost = () => undefined;
    client.on('error', onLost);
    let broken = false;
    try {
      await query(client, 'BEGIN');
      const tx: Transaction = {
        query: (sql, params) => query(client, sql, params),
        exec: async (sql) => {
          await wrap(() => client.query(sql));
        },
      };
      const result = await fn(tx);
      await query(client, 'COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw err;
    } finally {
      client.off('error', onLost);
      client.release(broken);
    }
  }
  // Fail at start with a clear error if the server is not there.
  await db.ping();
  return db;
}

/**
 * A LISTEN connection outside the pool (it is held for good, so it must not take one of the
 * pool's permits), reconnecting after a second when it is lost.
 */
function listenOn(opts: PgDbOptions, channel: string, onNotify: () => void): () => Promise<void> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) throw new Error(`listen: not a channel name: ${channel}`);
  let stopped = false;
  let client: pg.Client | undefined;
  let retry: NodeJS.Timeout | undefined;
  const connect = async () => {
    retry = undefined;
    if (stopped) return;
    const c = new pg.Client({ connectionString: opts.url, connectionTimeoutMillis: opts.connectTimeoutMs ?? 1000 });
    client = c;
    let lost = false;
    const onLost = () => {
      if (lost) return;
      lost = true;
      c.end().catch(() => undefined);
      if (!stopped) retry = setTimeout(() => void connect(), 1000).unref();
    };
    c.on('error', onLost);
    c.on('end', onLost);
    c.on('notification', (n) => {
      if (n.channel === channel) onNotify();
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${channel}`);
      if (!stopped) onNotify();
    } catch {
      onLost();
    }
  };
  void connect();
  return async () => {
    stopped = true;
    clearTimeout(retry);
    await client?.end().catch(() => undefined);
  };
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE', 'EHOSTUNREACH', '57P01', '57P02', '57P03']);

function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (CONNECTION_CODES.has(code) || code.startsWith('08'))) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Query read timeout|connect ECONNREFUSED/i.test(
    err.message,
  );
}
