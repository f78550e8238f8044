/**
 * The Db contract: the same suite against PGlite always and PostgreSQL with
 * DATABASE_URL. Proves the SQL features the features rely on behave the same.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/store/db.ts';
import { pgErrorCode, pgConstraint, UNIQUE_VIOLATION } from '../../src/store/db.ts';
import { loadMigrations, migrate } from '../../src/store/migrate.ts';
import { dbFactories } from '../helpers/stores.ts';

describe.each(dbFactories)('Db contract ($name)', (factory) => {
  let db: Db;
  beforeAll(async () => {
    db = await factory.create();
    await db.exec(`CREATE TABLE items (
      id bigserial PRIMARY KEY,
      name text NOT NULL,
      data jsonb,
      at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT items__name UNIQUE (name)
    )`);
  });
  afterAll(async () => {
    await factory.dispose(db);
  });

  it('When rows are inserted with parameters, then types come back the same on both adapters', async () => {
    const r = await db.query<{ id: number; name: string; data: unknown; at: Date }>(
      'INSERT INTO items (name, data) VALUES ($1, $2) RETURNING id, name, data, at',
      ['a', JSON.stringify({ x: 1, s: '微信' })],
    );
    expect(r.rowCount).toBe(1);
    const row = r.rows[0]!;
    expect(typeof row.id).toBe('number');
    expect(row.data).toEqual({ x: 1, s: '微信' });
    expect(row.at).toBeInstanceOf(Date);
    const c = await db.query<{ n: number }>('SELECT count(*) AS n FROM items');
    expect(c.rows[0]!.n).toBe(1);
  });

  it('When a unique constraint is violated, then the error carries SQLSTATE 23505 and the constraint name', async () => {
    await db.query('INSERT INTO items (name) VALUES ($1)', ['dup']);
    const err = await db.query('INSERT INTO items (name) VALUES ($1)', ['dup']).catch((e: unknown) => e);
    expect(pgErrorCode(err)).toBe(UNIQUE_VIOLATION);
    expect(pgConstraint(err)).toBe('items__name');
  });

  it('When a transaction throws, then nothing it wrote is kept', async () => {
    await expect(
      db.transaction(async (tx) => {
        await tx.query('INSERT INTO items (name) VALUES ($1)', ['rolled-back']);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const r = await db.query('SELECT 1 FROM items WHERE name = $1', ['rolled-back']);
    expect(r.rowCount).toBe(0);
  });

  it('When a transaction resolves, then its writes are committed and its value returned', async () => {
    const id = await db.transaction(async (tx) => {
      const r = await tx.query<{ id: number }>('INSERT INTO items (name) VALUES ($1) RETURNING id', ['committed']);
      await tx.query('UPDATE items SET data = $2 WHERE id = $1', [r.rows[0]!.id, JSON.stringify({ ok: true })]);
      return r.rows[0]!.id;
    });
    const r = await db.query<{ data: unknown }>('SELECT data FROM items WHERE id = $1', [id]);
    expect(r.rows[0]!.data).toEqual({ ok: true });
  });

  it('When 20 concurrent upserts target one row, then exactly one row exists', async () => {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        db.query(`INSERT INTO items (name, data) VALUES ('race', $1) ON CONFLICT ON CONSTRAINT items__name DO NOTHING`, [JSON.stringify({ i })]),
      ),
    );
    const r = await db.query('SELECT 1 FROM items WHERE name = $1', ['race']);
    expect(r.rowCount).toBe(1);
  });

  it('When two claimers use FOR UPDATE SKIP LOCKED, then no row is claimed twice', async () => {
    await db.exec(`CREATE TABLE jobs (id serial PRIMARY KEY, claimed_by text)`);
    await db.query(`INSERT INTO jobs (claimed_by) SELECT NULL FROM generate_series(1, 30)`);
    const claim = (who: string) =>
      db.transaction(async (tx) => {
        const r = await tx.query<{ id: number }>(
          `SELECT id FROM jobs WHERE claimed_by IS NULL ORDER BY id LIMIT 5 FOR UPDATE SKIP LOCKED`,
        );
        const ids = r.rows.map((x) => x.id);
        if (ids.length) await tx.query(`UPDATE jobs SET claimed_by = $1 WHERE id = ANY($2::int[])`, [who, ids]);
        return ids;
      });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => claim(`w${i}`)));
    const all = results.flat();
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(30);
  });

  it('When migrations run twice, concurrently, then each is applied exactly once', async () => {
    const migrations = [
      ...loadMigrations(),
      { version: '998', name: '998_contract_a.sql', sql: 'CREATE TABLE contract_a (id int PRIMARY KEY);' },
      { version: '999', name: '999_contract_b.sql', sql: 'INSERT INTO contract_a VALUES (1);' },
    ];
    const [a, b] = await Promise.all([migrate(db, migrations), migrate(db, migrations)]);
    expect([...a, ...b].filter((n) => n === '999_contract_b.sql')).toHaveLength(1);
    expect(await migrate(db, migrations)).toEqual([]);
    const r = await db.query('SELECT * FROM contract_a');
    expect(r.rowCount).toBe(1);
  });

  it('When a migration fails, then none of that run is recorded and the error surfaces', async () => {
    const bad = [{ version: '997', name: '997_bad.sql', sql: 'CREATE TABLE nope (; ' }];
    await expect(migrate(db, bad)).rejects.toThrow();
    const r = await db.query(`SELECT 1 FROM schema_migrations WHERE version = '997'`);
    expect(r.rowCount).toBe(0);
  });

  it('When the project migrations are loaded, then numbers are unique and ordered', () => {
    const m = loadMigrations();
    expect(m.length).toBeGreaterThan(0);
    expect(m.map((x) => x.version)).toEqual([...m.map((x) => x.version)].sort());
  });
});
