/**
 * Forward-only numbered migrations (`migrations/NNN_name.sql`), applied in order, each
 * once, at start and by `npm run migrate`. A landed migration is never edited: fix
 * forward with a new number. Numbers are ranged by feature so parallel work does not
 * collide: 0xx foundation, 1xx wechat, 2xx linking, 3xx oauth, 4xx inbox,
 * 5xx notices/webhooks, 6xx admin.
 * Concurrent starts are safe: the whole run holds a transaction-scoped advisory lock.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Db } from './db.ts';

const DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
const NAME = /^(\d{3})_[a-z0-9_]+\.sql$/;

export interface Migration {
  version: string;
  name: string;
  sql: string;
}

export function loadMigrations(dir = DIR): Migration[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  const seen = new Set<string>();
  return files.map((file) => {
    const m = NAME.exec(file);
    if (!m?.[1]) throw new Error(`migration file name must look like 001_name.sql: ${file}`);
    if (seen.has(m[1])) throw new Error(`two migrations share number ${m[1]}`);
    seen.add(m[1]);
    return { version: m[1], name: file, sql: readFileSync(dir + file, 'utf8') };
  });
}

/** Applies pending migrations; returns the names applied by this call. */
export async function migrate(db: Db, migrations = loadMigrations()): Promise<string[]> {
  return db.transaction(async (tx) => {
    // hashtext('wxbridge:migrate') as a constant keeps the lock id stable across versions.
    await tx.query(`SELECT pg_advisory_xact_lock(7331000001)`);
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version text PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await tx.query<{ version: string }>('SELECT version FROM schema_migrations');
    const applied = new Set(rows.map((r) => r.version));
    const done: string[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      await tx.exec(m.sql);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      done.push(m.name);
    }
    return done;
  });
}
