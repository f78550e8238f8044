/**
 * Linked users for the benchmarks, written straight into the bridge's tables in bulk (one
 * statement per table), with the columns and values linking writes for an imported link
 * (proof `import`, default binding, exclusive as the bench merchant says). The schema is
 * the real one: the database was migrated by `migrate()` before any of this runs, and the
 * cost-growth seed, which drops and rebuilds the indexes, checks the schema it leaves
 * against the migrations.
 */
import { performance } from 'node:perf_hooks';
import { createPgDb } from '../../src/store/db-pg.ts';
import { pgErrorCode, type Db, type Queryable } from '../../src/store/db.ts';
import { loadMigrations, migrate } from '../../src/store/migrate.ts';
import { openidFor } from '../../src/sandbox/ids.ts';
import { BENCH } from './stack.ts';

export async function openMigratedDb(url: string): Promise<Db> {
  const db = await createPgDb({ url, max: 4, statementTimeoutMs: 3_600_000 });
  await migrate(db);
  return db;
}

/** The sandbox's openid of each user id (the standalone sandbox uses no salt). */
export const openidsOf = (userIds: readonly string[]): string[] => userIds.map((u) => openidFor(BENCH.appId, u));

/** One identity, one active default binding (account `acct-<userId>`) and one pairwise subject per user. */
export async function seedLinkedUsers(q: Queryable, userIds: readonly string[]): Promise<void> {
  const openids = openidsOf(userIds);
  const accounts = userIds.map((u) => `acct-${u}`);
  await q.query(
    `WITH input AS (SELECT * FROM unnest($2::text[], $3::text[]) AS t(openid, account_id)),
     ids AS (
       INSERT INTO identities (app_id, openid, subscribed, subscribed_at)
       SELECT $1, openid, true, now() FROM input
       ON CONFLICT ON CONSTRAINT identities__app_id_openid DO UPDATE SET updated_at = now()
       RETURNING id, openid
     ),
     subs AS (
       INSERT INTO subjects (merchant_id, identity_id, sub)
       SELECT $4, ids.id, 'bench-' || md5(ids.id::text) FROM ids
       ON CONFLICT DO NOTHING
     )
     INSERT INTO bindings (merchant_id, identity_id, account_id, account_display, exclusive, is_default, proof, created_by)
     SELECT $4, ids.id, input.account_id, '**** ' || right(input.account_id, 4), true, true, 'import', 'bench'
     FROM ids JOIN input USING (openid)
     ON CONFLICT DO NOTHING`,
    [BENCH.appId, openids, accounts, BENCH.merchant],
  );
}

/** The tables a login and a binding lookup read, which the cost-growth seed fills. */
const SEEDED_TABLES = ['identities', 'subjects', 'bindings'];

/**
 * `n` synthetic linked users (identity + subject + binding each; ids and openids derived
 * from the row number with generate_series, no round trip per row) for the cost-growth
 * runs, loaded the way a restore loads a dump, in one transaction:
 *
 * 1. the three tables' indexes, index-backed constraints (primary keys included) and every
 *    foreign key to or from them are read from the catalog (`pg_get_indexdef`,
 *    `pg_get_constraintdef`: nothing is written down here) and dropped; CHECK and NOT NULL
 *    stay and are checked per row;
 * 2. the rows go in with one INSERT … SELECT per table and chunk of row numbers, in
 *    row-number order as before. Key order would not help: with no index in place there
 *    is nothing to keep sorted, the builds sort anyway, and it would reorder the heap;
 * 3. everything is recreated from the saved definitions: indexes in the order the
 *    migrations made them (the planner breaks cost ties by index OID), foreign keys last,
 *    each validated by one join instead of a trigger lookup per row. Then ANALYZE, and a
 *    CHECKPOINT so the measurements do not share the disk with the load's write-back.
 *
 * Seed time (2 cores, other benchmarks running, load average 4-8): 1M in 25-40 s instead of
 * 94-120 s; 10M in 7-7.5 min (2.5 for the rows, 4.5-5 for the index builds), where
 * inserting with every index in place took 14 min for the first 4M. That cost was a random
 * B-tree insert per row and index (UUID keys) plus a foreign-key lookup per row.
 *
 * What the bench measures does not change:
 * - the schema: the tables' columns, indexes and constraints, and the foreign keys that
 *   point at them, are compared with the migrations applied to a scratch schema in a
 *   rolled-back transaction, before the load and again just before it commits; any
 *   difference throws and the load rolls back;
 * - the rows: the same values as before, in the same heap order (same ctids), so a lookup
 *   reads the same heap pages; the lookups' plans are the same.
 *
 * One physical difference remains. A B-tree built by sorting has its leaves packed to the
 * default fillfactor (90%); one grown by inserts in random key order is 50-75% full. At 1M
 * the three tables take 873 MB instead of 1,035 MB (heaps equal), with the same B-tree
 * depth. In interleaved lookups on both layouts, login p50 was 0.47 ms instead of 0.53 and
 * API p50 0.23 ms instead of 0.25; p99 was within noise. So the seeded database is what a
 * restore or a REINDEX gives: slightly smaller and faster than one grown by sign-ups.
 */
export async function seedSyntheticBindings(db: Db, n: number, chunk = 1_000_000, log: (msg: string) => void = () => undefined): Promise<void> {
  const t0 = performance.now();
  const since = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  const expected = await migratedShape(db);
  await assertShape(db, expected, 'before the seed');
  await db.transaction(async (tx) => {
    // For this transaction only (SET LOCAL), nothing in postgresql.conf. The load commits
    // once. The index builds sort in maintenance_work_mem, which the foreign-key validation
    // joins use too, and generate_series keeps each chunk in work_mem.
    await tx.exec(`SET LOCAL synchronous_commit = off; SET LOCAL maintenance_work_mem = '1GB'; SET LOCAL work_mem = '256MB'`);
    const plan = await rebuildPlan(tx);
    for (const sql of plan.drop) await tx.exec(sql);
    log(`seed: ${plan.drop.length} indexes, unique/primary keys and foreign keys dropped`);
    for (let from = 1; from <= n; from += chunk) {
      const to = Math.min(n, from + chunk - 1);
      await tx.query(
        `INSERT INTO identities (id, app_id, openid, person_id, subscribed)
         SELECT k.id, $1, 'oScale' || lpad(g::text, 22, '0'), k.id, true
         FROM generate_series($2::int, $3::int) AS g, LATERAL (SELECT md5('i' || g)::uuid AS id) AS k`,
        [BENCH.appId, from, to],
      );
      await tx.query(
        `INSERT INTO subjects (merchant_id, identity_id, sub)
         SELECT $1, md5('i' || g)::uuid, 'scale-' || md5('s' || g) FROM generate_series($2::int, $3::int) AS g`,
        [BENCH.merchant, from, to],
      );
      await tx.query(
        `INSERT INTO bindings (id, merchant_id, identity_id, account_id, account_display, exclusive, is_default, proof, created_by)
         SELECT md5('b' || g)::uuid, $1, md5('i' || g)::uuid, 'scale-' || g, '**** ' || right(g::text, 4), true, true, 'import', 'bench'
         FROM generate_series($2::int, $3::int) AS g`,
        [BENCH.merchant, from, to],
      );
      log(`seed: ${to} rows per table at ${since()}`);
    }
    const took: [string, number][] = [];
    for (const sql of plan.create) {
      const t = performance.now();
      await tx.exec(sql);
      took.push([/(?:INDEX|CONSTRAINT) (\S+)/.exec(sql)?.[1] ?? sql, (performance.now() - t) / 1000]);
    }
    const slowest = took.sort((a, b) => b[1] - a[1]).slice(0, 4).map(([name, s]) => `${name} ${s.toFixed(1)} s`);
    log(`seed: ${took.length} indexes and constraints rebuilt at ${since()} (slowest: ${slowest.join(', ')})`);
    await assertShape(tx, expected, 'after the seed');
  });
  await db.exec('ANALYZE identities; ANALYZE subjects; ANALYZE bindings;');
  log(`seed: committed and analyzed at ${since()}`);
  // The load dirties pages faster than the OS writes them back (up to ~0.7 GB pending during
  // a 10M load). The login flows measured next commit, and must not queue behind that.
  // The checkpoint writes and syncs the rest now, in about a second.
  if (db.kind === 'pg') {
    try {
      await db.exec('CHECKPOINT');
      log(`seed: checkpoint done at ${since()}`);
    } catch (err) {
      if (pgErrorCode(err) !== '42501') throw err;
      log('seed: no CHECKPOINT (needs superuser or pg_checkpoint); measurements may meet the write-back');
    }
  }
}

/**
 * DDL to drop and recreate the seeded tables' indexes, index-backed constraints and the
 * foreign keys to or from them, from the catalog. `create` keeps the original order of the
 * indexes (by OID, i.e. creation), then the foreign keys in theirs.
 */
async function rebuildPlan(q: Queryable): Promise<{ drop: string[]; create: string[] }> {
  const indexes = await q.query<{ drop: string; create: string }>(
    `SELECT CASE WHEN con.oid IS NULL THEN format('DROP INDEX %I.%I', n.nspname, ic.relname)
                 ELSE format('ALTER TABLE %I.%I DROP CONSTRAINT %I', n.nspname, t.relname, con.conname) END AS drop,
            CASE WHEN con.oid IS NULL THEN pg_get_indexdef(i.indexrelid)
                 ELSE format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', n.nspname, t.relname, con.conname, pg_get_constraintdef(con.oid)) END AS create
       FROM pg_index i
       JOIN pg_class t ON t.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
       JOIN pg_class ic ON ic.oid = i.indexrelid
       LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
      WHERE n.nspname = current_schema() AND t.relname = ANY($1)
      ORDER BY i.indexrelid`,
    [SEEDED_TABLES],
  );
  const foreignKeys = await q.query<{ drop: string; create: string }>(
    `WITH seeded AS (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = current_schema() AND c.relname = ANY($1) AND c.relkind = 'r')
     SELECT format('ALTER TABLE %I.%I DROP CONSTRAINT %I', n.nspname, t.relname, con.conname) AS drop,
            format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', n.nspname, t.relname, con.conname, pg_get_constraintdef(con.oid)) AS create
       FROM pg_constraint con
       JOIN pg_class t ON t.oid = con.conrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE con.contype = 'f' AND (con.conrelid IN (SELECT oid FROM seeded) OR con.confrelid IN (SELECT oid FROM seeded))
      ORDER BY con.oid`,
    [SEEDED_TABLES],
  );
  return {
    drop: [...foreignKeys.rows, ...indexes.rows].map((r) => r.drop),
    create: [...indexes.rows, ...foreignKeys.rows].map((r) => r.create),
  };
}

/**
 * The seeded tables as the planner and the constraints see them, one line per column,
 * index (numbered in creation order per table, with validity) and constraint on or
 * pointing at them, schema names left out.
 */
async function shapeOf(q: Queryable): Promise<string[]> {
  const r = await q.query<{ line: string }>(
    `WITH t AS (SELECT c.oid, c.relname, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = current_schema() AND c.relname = ANY($1) AND c.relkind = 'r')
     SELECT format('%s column %s %s %s%s%s', t.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
                   CASE WHEN a.attnotnull THEN ' not null' ELSE '' END, coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')) AS line
       FROM t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
       LEFT JOIN pg_attrdef d ON d.adrelid = t.oid AND d.adnum = a.attnum
     UNION ALL
     SELECT format('%s index #%s %s%s', t.relname, row_number() OVER (PARTITION BY t.oid ORDER BY i.indexrelid),
                   replace(pg_get_indexdef(i.indexrelid), ' ON ' || quote_ident(t.nspname) || '.', ' ON '),
                   CASE WHEN i.indisvalid AND i.indisready AND i.indislive THEN '' ELSE ' (not valid)' END)
       FROM t JOIN pg_index i ON i.indrelid = t.oid
     UNION ALL
     SELECT format('%s constraint %s %s%s', c.relname, con.conname, pg_get_constraintdef(con.oid),
                   CASE WHEN con.convalidated THEN '' ELSE ' (not validated)' END)
       FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
      WHERE con.conrelid IN (SELECT oid FROM t) OR con.confrelid IN (SELECT oid FROM t)
     ORDER BY 1`,
    [SEEDED_TABLES],
  );
  return r.rows.map((x) => x.line);
}

/** The shape the migrations give the seeded tables: applied in a scratch schema in a transaction that is rolled back. */
async function migratedShape(db: Db): Promise<string[]> {
  const rollback = new Error('rolled back on purpose');
  let shape: string[] = [];
  try {
    await db.transaction(async (tx) => {
      const schema = `wxb_seed_shape_${process.pid}`;
      await tx.exec(`CREATE SCHEMA ${schema}; SET LOCAL search_path = ${schema}`);
      for (const m of loadMigrations()) await tx.exec(m.sql);
      shape = await shapeOf(tx);
      throw rollback;
    });
  } catch (err) {
    if (err !== rollback) throw err;
  }
  if (shape.length === 0) throw new Error('the migrations created none of the seeded tables');
  return shape;
}

async function assertShape(q: Queryable, expected: readonly string[], when: string): Promise<void> {
  const actual = await shapeOf(q);
  const missing = expected.filter((l) => !actual.includes(l));
  const extra = actual.filter((l) => !expected.includes(l));
  if (missing.length > 0 || extra.length > 0 || actual.length !== expected.length) {
    throw new Error(`seeded tables differ from a freshly migrated database ${when}: missing ${JSON.stringify(missing)}, extra ${JSON.stringify(extra)}`);
  }
}

/** Heap + indexes of the tables a login and a binding lookup read, in MB. */
export async function tableSizesMb(q: Queryable): Promise<Record<string, number>> {
  const r = await q.query<{ name: string; mb: number }>(
    `SELECT relname AS name, round(pg_total_relation_size(c.oid) / 1048576.0)::int AS mb
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND relname IN ('identities', 'subjects', 'bindings')`,
  );
  return Object.fromEntries(r.rows.map((x) => [x.name, x.mb]));
}
