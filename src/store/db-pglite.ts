/**
 * Db over PGlite: real Postgres compiled to WASM, embedded in the process, files in
 * DATA_DIR (or in memory). It is a single connection: PGlite serialises queries, and a
 * transaction holds it exclusively, so the same SQL (including FOR UPDATE SKIP LOCKED)
 * behaves as on a server with one session at a time. Demo mode and `npm test` only.
 */
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import type { Db, QueryResult, Transaction } from './db.ts';

export async function createPgliteDb(opts: { dataDir?: string } = {}): Promise<Db & { pglite: PGlite }> {
  if (opts.dataDir) mkdirSync(opts.dataDir, { recursive: true });
  const pglite = await PGlite.create(opts.dataDir ? { dataDir: opts.dataDir } : {});
  let closed = false;

  const toResult = <T>(r: { rows: unknown[]; affectedRows?: number }): QueryResult<T> => ({
    rows: r.rows as T[],
    rowCount: r.affectedRows || r.rows.length,
  });

  const db: Db & { pglite: PGlite } = {
    kind: 'pglite',
    pglite,
    async query(sql, params) {
      return toResult(await pglite.query(sql, params as unknown[] | undefined));
    },
    transaction(fn) {
      return pglite.transaction(async (t) => {
        const tx: Transaction = {
          query: async (sql, params) => toResult(await t.query(sql, params as unknown[] | undefined)),
          exec: async (sql) => {
            await t.exec(sql);
          },
        };
        return fn(tx);
      });
    },
    async exec(sql) {
      await pglite.exec(sql);
    },
    async ping() {
      if (closed) throw new Error('db closed');
      await pglite.query('SELECT 1');
    },
    async close() {
      if (closed) return;
      closed = true;
      await pglite.close();
    },
  };
  return db;
}
