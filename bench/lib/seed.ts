/**
 * Linked users for the benchmarks, written straight into the bridge's tables in bulk (one
 * statement per table), with the columns and values linking writes for an imported link
 * (proof `import`, default binding, exclusive as the bench merchant says). The schema is
 * the real one: the database was migrated by `migrate()` before any of this runs.
 */
import { createPgDb } from '../../src/store/db-pg.ts';
import type { Db, Queryable } from '../../src/store/db.ts';
import { migrate } from '../../src/store/migrate.ts';
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

/**
 * `n` synthetic linked users (identity + subject + binding each) with generate_series, for
 * the cost-growth runs: ids and openids derived from the row number, so no round trip per
 * row, and every index of the migrations in place while the rows go in.
 */
export async function seedSyntheticBindings(db: Db, n: number, chunk = 1_000_000): Promise<void> {
  for (let from = 1; from <= n; from += chunk) {
    const to = Math.min(n, from + chunk - 1);
    await db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO identities (id, app_id, openid, person_id, subscribed)
         SELECT md5('i' || g)::uuid, $1, 'oScale' || lpad(g::text, 22, '0'), md5('i' || g)::uuid, true
         FROM generate_series($2::int, $3::int) AS g`,
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
    });
  }
  await db.exec('ANALYZE identities; ANALYZE subjects; ANALYZE bindings;');
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
