/**
 * The Db port: PostgreSQL is the source of truth. Two adapters run the same SQL:
 * `pg` (a pool, for production) and PGlite (embedded Postgres in DATA_DIR, for demo
 * mode and the newcomer's `npm test`). Queries take a `Queryable`, so one function
 * serves the pool and a transaction alike. A transaction never spans a network call
 * to WeChat or a merchant (STYLE.md rule 5).
 */

export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>>;
}

export interface Transaction extends Queryable {
  /** Runs a script of several statements inside the transaction (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: 'pg' | 'pglite';
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Runs a script of several statements (migrations). */
  exec(sql: string): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * LISTEN on `channel` (an identifier) on a connection of its own; `onNotify` runs on each
   * NOTIFY, and once after every reconnect (notifications sent meanwhile are lost). Never
   * throws: while the server is away it retries, and callers keep polling anyway. Only the
   * `pg` adapter has it; the embedded database serves one process, which wakes itself.
   */
  listen?(channel: string, onNotify: () => void): () => Promise<void>;
}

/** Postgres SQLSTATE of a unique violation, for `ON CONFLICT`-less races. */
export const UNIQUE_VIOLATION = '23505';

export function pgErrorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** The constraint a unique/foreign-key violation names (constraint names are `table__columns`). */
export function pgConstraint(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'constraint' in err) {
    const c = (err as { constraint: unknown }).constraint;
    return typeof c === 'string' ? c : undefined;
  }
  return undefined;
}
