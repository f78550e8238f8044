/**
 * The adapters a test run proves: the embedded ones always, the real servers when
 * DATABASE_URL / REDIS_URL are set (CI sets both). Each Db gets a schema of its own
 * on a real server, so test files never see each other's rows.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Db } from '../../src/store/db.ts';
import type { Kv } from '../../src/store/kv.ts';
import { createMemoryKv } from '../../src/store/kv-memory.ts';

export interface Factory<T> {
  name: string;
  create(): Promise<T>;
  dispose(x: T): Promise<void>;
}

export const REDIS_URL = process.env.REDIS_URL;
export const DATABASE_URL = process.env.DATABASE_URL;

export const kvFactories: Factory<Kv>[] = [
  { name: 'memory', create: async () => createMemoryKv(), dispose: (kv) => kv.close() },
  ...(REDIS_URL
    ? [
        {
          name: 'redis',
          create: async () => (await import('../../src/store/kv-redis.ts')).createRedisKv({ url: REDIS_URL }),
          dispose: (kv: Kv) => kv.close(),
        },
      ]
    : []),
];

const schemas = new WeakMap<Db, string>();

export async function createSchemaDb(url: string): Promise<Db> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const { createPgDb } = await import('../../src/store/db-pg.ts');
  const db = await createPgDb({ url, schema, max: 5 });
  schemas.set(db, schema);
  return db;
}

async function dropSchemaDb(db: Db): Promise<void> {
  const schema = schemas.get(db);
  await db.close();
  if (!schema || !DATABASE_URL) return;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
}

export const dbFactories: Factory<Db>[] = [
  { name: 'pglite', create: async () => (await import('../../src/store/db-pglite.ts')).createPgliteDb(), dispose: (db) => db.close() },
  ...(DATABASE_URL ? [{ name: 'pg', create: () => createSchemaDb(DATABASE_URL), dispose: dropSchemaDb }] : []),
];

/** The Db a feature test should use: the real server when configured, else PGlite. */
export const primaryDb: Factory<Db> = dbFactories[dbFactories.length - 1] as Factory<Db>;
export const primaryKv: Factory<Kv> = kvFactories[kvFactories.length - 1] as Factory<Kv>;
