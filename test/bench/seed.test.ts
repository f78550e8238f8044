/**
 * The benchmark seeds (bench/lib/seed.ts) write rows the app itself reads back: a seed
 * that drifts from the migrations would make the login and lookup benchmarks measure
 * failures. Runs on PGlite, and on PostgreSQL when DATABASE_URL is set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findIdentityByOpenid, findSubject } from '../../src/linking/identities.queries.ts';
import { listBindings } from '../../src/linking/bindings.queries.ts';
import type { Db } from '../../src/store/db.ts';
import { migrate } from '../../src/store/migrate.ts';
import { openidsOf, seedLinkedUsers, seedSyntheticBindings, tableSizesMb } from '../../bench/lib/seed.ts';
import { BENCH } from '../../bench/lib/stack.ts';
import { dbFactories } from '../helpers/stores.ts';

const count = async (db: Db, table: string) => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n;

describe.each(dbFactories)('bench seeds on $name', (factory) => {
  let db: Db;
  beforeAll(async () => {
    db = await factory.create();
    await migrate(db);
  });
  afterAll(async () => {
    await factory.dispose(db);
  });

  it('When linked users are seeded (twice), then the app finds each one with one active default binding and a subject', async () => {
    const users = ['u1', 'u2', 'u3'];
    await seedLinkedUsers(db, users);
    await seedLinkedUsers(db, users);
    const [openid] = openidsOf(['u2']);
    const identity = await findIdentityByOpenid(db, BENCH.appId, openid!);
    expect(identity).not.toBeNull();
    const bindings = await listBindings(db, { merchantId: BENCH.merchant, identityId: identity!.id, status: 'active' });
    expect(bindings).toHaveLength(1);
    expect(bindings[0]).toMatchObject({ accountId: 'acct-u2', isDefault: true, status: 'active' });
    const sub = await db.query<{ sub: string }>('SELECT sub FROM subjects WHERE identity_id = $1', [identity!.id]);
    expect(await findSubject(db, BENCH.merchant, sub.rows[0]!.sub)).toEqual({ identityId: identity!.id });
    expect(await count(db, 'bindings')).toBe(3);
  });

  it('When synthetic users are seeded in chunks, then every row is there once and the lookups the benchmark makes find exactly one', async () => {
    const before = await count(db, 'bindings');
    await seedSyntheticBindings(db, 2_500, 1_000);
    expect(await count(db, 'bindings')).toBe(before + 2_500);
    expect(await count(db, 'identities')).toBe(before + 2_500);
    for (const i of [1, 1_000, 1_001, 2_500]) {
      const identity = await findIdentityByOpenid(db, BENCH.appId, `oScale${String(i).padStart(22, '0')}`);
      expect(identity, `identity ${i}`).not.toBeNull();
      expect(await listBindings(db, { merchantId: BENCH.merchant, identityId: identity!.id, status: 'active' })).toHaveLength(1);
      expect(await listBindings(db, { merchantId: BENCH.merchant, accountId: `scale-${i}` })).toHaveLength(1);
    }
    expect(await findIdentityByOpenid(db, BENCH.appId, `oScale${String(2_501).padStart(22, '0')}`)).toBeNull();
    const sizes = await tableSizesMb(db);
    expect(Object.keys(sizes).sort()).toEqual(['bindings', 'identities', 'subjects']);
  });
});
