/**
 * "Exactly one default when any binding is active" (DESIGN.md "Linking"; SECURITY.md T7,
 * ASVS 5.0 15.4.2 check-then-act must be atomic) when an unlink races a "make default" or
 * another unlink of the same user. `revokeBinding` once read the binding's `is_default`
 * before taking the per-user lock and decided on that stale value whether to promote another
 * binding; a setDefault or revoke committing in between left the user with active bindings and
 * no default. It now decides under the lock and always promotes when no default is left.
 * Each test holds the revoke just before the lock while the other change commits.
 *
 * Needs a real PostgreSQL (PGlite has one connection, so the two transactions cannot
 * interleave): run with DATABASE_URL set, as .ci/run does.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { merchantSchema, type MerchantConfig } from '../../src/config/schema.ts';
import { createBindingsService } from '../../src/linking/bindings.service.ts';
import { createPgDb } from '../../src/store/db-pg.ts';
import type { Db, Transaction } from '../../src/store/db.ts';
import { migrate } from '../../src/store/migrate.ts';

const URL_ = process.env.DATABASE_URL;
const merchant: MerchantConfig = merchantSchema.parse({ id: 'shared', name: 'shared', officialAccount: 'oa', binding: { exclusive: false, maxAccountsPerUser: 3 }, linking: [{ type: 'binding-code' }] });
const log = pino({ level: 'silent' });

let db: Db & { close(): Promise<void> };
let schema: string;

beforeAll(async () => {
  if (!URL_) return;
  schema = `t_default_race_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: URL_ });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  db = await createPgDb({ url: URL_, schema, max: 5 });
  await migrate(db);
}, 120_000);
afterAll(async () => {
  if (!URL_) return;
  await db?.close();
  const admin = new pg.Client({ connectionString: URL_ });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
});

/** A Db whose transactions pause just before taking the per-user advisory lock, until `open()`. */
function gatedBeforeLock(d: Db) {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let reached!: () => void;
  const atGate = new Promise<void>((r) => (reached = r));
  const gated: Db = {
    ...d,
    query: d.query.bind(d),
    transaction: (fn) =>
      d.transaction((tx) =>
        fn({
          ...tx,
          exec: tx.exec.bind(tx),
          query: (async (sql: string, params?: readonly unknown[]) => {
            if (sql.includes('pg_advisory_xact_lock') && sql.includes('wxb:bind:')) {
              reached();
              await gate;
            }
            return tx.query(sql, params);
          }) as Transaction['query'],
        } as Transaction),
      ),
  };
  return { gated, open, atGate };
}

describe.skipIf(!URL_)('default binding under a racing unlink and set-default (T7)', () => {
  it('When the user makes binding B default while B is being unlinked, then the remaining active binding is still the default (exactly one default)', async () => {
    const svc = createBindingsService({ db, log, now: Date.now, merchant: (id) => (id === 'shared' ? merchant : undefined) });
    const ident = await db.query<{ id: string }>(`INSERT INTO identities (app_id, openid) VALUES ('wxreview', $1) RETURNING id`, [`o-${randomBytes(4).toString('hex')}`]);
    const identityId = ident.rows[0]!.id;
    const link = (account: string) => svc.link({ merchantId: 'shared', identityId, account: { id: account, display: null }, proof: 'binding-code', actor: 'test', source: 'api' });
    const a = await link('acct-A');
    const b = await link('acct-B');
    if (!a.ok || !b.ok) throw new Error('setup failed');
    expect(a.binding.isDefault).toBe(true);
    expect(b.binding.isDefault).toBe(false);

    // The merchant (or the user in another tab) unlinks B: it reads B (not default) and waits for the lock.
    const { gated, open, atGate } = gatedBeforeLock(db);
    const revoker = createBindingsService({ db: gated, log, now: Date.now, merchant: (id) => (id === 'shared' ? merchant : undefined) });
    const revoking = revoker.revokeBinding({ merchantId: 'shared', bindingId: b.binding.id, actor: 'merchant:test', reason: 'card cancelled', source: 'api' });
    await atGate;
    // Meanwhile the user makes B the default (takes the lock, commits).
    await svc.setDefault({ merchantId: 'shared', identityId, bindingId: b.binding.id, actor: `user:${identityId}` });
    open();
    await revoking;

    const active = await svc.listBindings({ merchantId: 'shared', identityId, status: 'active' });
    expect(active.map((x) => x.accountId)).toEqual(['acct-A']);
    // Before the fix: A active but not default, the user had no default binding at all.
    expect(active.filter((x) => x.isDefault)).toHaveLength(1);
  }, 60_000);
  it('When the merchant revokes two of a user\'s three bindings at once (the default and another), then the remaining one becomes the default', async () => {
    const svc = createBindingsService({ db, log, now: Date.now, merchant: (id) => (id === 'shared' ? merchant : undefined) });
    const ident = await db.query<{ id: string }>(`INSERT INTO identities (app_id, openid) VALUES ('wxreview', $1) RETURNING id`, [`o-${randomBytes(4).toString('hex')}`]);
    const identityId = ident.rows[0]!.id;
    const link = (account: string) => svc.link({ merchantId: 'shared', identityId, account: { id: account, display: null }, proof: 'binding-code', actor: 'test', source: 'api' });
    const x = await link('acct-X'); // default (oldest)
    const y = await link('acct-Y'); // promoted when X goes
    const z = await link('acct-Z');
    if (!x.ok || !y.ok || !z.ok) throw new Error('setup failed');

    // Two parallel POST /api/v1/bindings/:id/revoke calls: Y's reads "not default", then waits for the lock.
    const { gated, open, atGate } = gatedBeforeLock(db);
    const revoker = createBindingsService({ db: gated, log, now: Date.now, merchant: (id) => (id === 'shared' ? merchant : undefined) });
    const revokingY = revoker.revokeBinding({ merchantId: 'shared', bindingId: y.binding.id, actor: 'merchant:test', reason: 'closed', source: 'api' });
    await atGate;
    // X (the default) is revoked first and Y, the oldest remaining, is promoted.
    await svc.revokeBinding({ merchantId: 'shared', bindingId: x.binding.id, actor: 'merchant:test', reason: 'closed', source: 'api' });
    open();
    await revokingY;

    const active = await svc.listBindings({ merchantId: 'shared', identityId, status: 'active' });
    expect(active.map((b) => b.accountId)).toEqual(['acct-Z']);
    // Before the fix: Z active but not default (Y took the default with it).
    expect(active.filter((b) => b.isDefault)).toHaveLength(1);
  }, 60_000);
});
