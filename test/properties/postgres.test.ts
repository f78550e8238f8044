/**
 * Properties against PostgreSQL's own guarantees (PGlite embedded; a schema of a real server
 * with DATABASE_URL): binding uniqueness under random interleavings (bindings.property.ts)
 * and the notices outbox state machine (outbox.property.ts), on one database. Each is also
 * run with what it guards taken away — the exclusive partial unique index and the per-user
 * lock; the lease check of outcome writes — and must then fail.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgDb } from '../../src/store/db-pg.ts';
import type { Db } from '../../src/store/db.ts';
import { migrate } from '../../src/store/migrate.ts';
import { writeOutcomes } from '../../src/notices/deliveries.queries.ts';
import { DATABASE_URL, primaryDb } from '../helpers/stores.ts';
import { bindingProperty, bindingsService, withoutUserLock } from './bindings.property.ts';
import { leaseBlindWriter, outboxProperty } from './outbox.property.ts';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 25);
let db: Db;
/** A second pool on the same schema: the other app instance (PGlite has one connection). */
let second: Db | undefined;

beforeAll(async () => {
  db = await primaryDb.create();
  await migrate(db);
  if (DATABASE_URL) {
    const schema = (await db.query<{ s: string }>('SELECT current_schema() AS s')).rows[0]!.s;
    second = await createPgDb({ url: DATABASE_URL, schema, max: 5 });
  }
}, 180_000);
afterAll(async () => {
  await second?.close();
  if (db) await primaryDb.dispose(db);
});

describe('property: binding uniqueness under random interleavings', () => {
  it('When users link, unlink and change their default in any order from two instances, then exclusive, maxAccountsPerUser, one default and nothing half-written all hold', async () => {
    await fc.assert(bindingProperty([bindingsService(db), bindingsService(second ?? db)], db), { numRuns: RUNS });
  }, 120_000);

  it('When the exclusive partial unique index and the per-user lock are removed, then the property finds the violation', async () => {
    await db.query('DROP INDEX bindings__merchant_id_account_id');
    try {
      const broken = withoutUserLock(db);
      const out = await fc.check(bindingProperty([bindingsService(broken), bindingsService(second ? withoutUserLock(second) : broken)], db), { numRuns: RUNS * 2 });
      expect(out.failed).toBe(true);
    } finally {
      // The broken run left duplicates behind: take them out of the index's scope, then restore it.
      await db.query(`UPDATE bindings SET exclusive = false WHERE merchant_id = 'excl'`);
      await db.query(`CREATE UNIQUE INDEX bindings__merchant_id_account_id ON bindings (merchant_id, account_id) WHERE status = 'active' AND exclusive`);
    }
  }, 120_000);
});

describe('property: the notices outbox state machine', () => {
  it('When claims, intents, outcomes (fresh and stale), lease expiries and receipts come in any order, then only legal transitions happen and nothing is sent twice after a definite answer', async () => {
    await fc.assert(outboxProperty(db, writeOutcomes), { numRuns: RUNS });
  }, 120_000);

  it('When outcomes are written without the lease check, then the property finds the illegal transition', async () => {
    const out = await fc.check(outboxProperty(db, leaseBlindWriter), { numRuns: RUNS * 2 });
    expect(out.failed).toBe(true);
  }, 120_000);
});
