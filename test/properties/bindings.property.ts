/**
 * Binding uniqueness under random interleavings (SECURITY.md D5, T7; DESIGN.md "Linking"):
 * users link, unlink and make default accounts at two merchants at once — one `exclusive` (an account
 * belongs to one WeChat user) with maxAccountsPerUser 2, one shared with a limit of 3 —
 * from two app instances. After any order: the DB's partial unique indexes and the per-user
 * lock keep every policy (one active binding per exclusive account, none over the limit,
 * no duplicate, exactly one default per linked user), every `created` answer has its
 * binding, webhook and audit row, and every refusal changed nothing.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { pino } from 'pino';
import { expect } from 'vitest';
import { merchantSchema, type MerchantConfig } from '../../src/config/schema.ts';
import { AppError } from '../../src/http/errors.ts';
import { createBindingsService, type BindingsService } from '../../src/linking/bindings.service.ts';
import type { LinkResult } from '../../src/linking/types.ts';
import type { Db, Transaction } from '../../src/store/db.ts';

const merchant = (id: string, exclusive: boolean, maxAccountsPerUser: number): MerchantConfig =>
  merchantSchema.parse({ id, name: id, officialAccount: 'oa', binding: { exclusive, maxAccountsPerUser }, linking: [{ type: 'binding-code' }] });
const MERCHANTS = new Map([
  ['excl', merchant('excl', true, 2)],
  ['shared', merchant('shared', false, 3)],
]);

const log = pino({ level: 'silent' });
export const bindingsService = (d: Db) => createBindingsService({ db: d, log, now: Date.now, merchant: (id) => MERCHANTS.get(id) });

type Op = { kind: 'link' | 'unlink' | 'default'; on: 0 | 1; merchant: string; user: number; account: number; delayMs: number };
const op = fc.record({
  // 'default' racing 'unlink' of the same binding once left a user with no default at all.
  kind: fc.constantFrom('link', 'link', 'link', 'unlink', 'default'),
  on: fc.constantFrom(0 as const, 1 as const),
  merchant: fc.constantFrom('excl', 'shared'),
  user: fc.nat(3),
  account: fc.nat(4),
  delayMs: fc.nat(5),
}) as fc.Arbitrary<Op>;

export function bindingProperty(instances: [BindingsService, BindingsService], d: Db) {
  return fc.asyncProperty(fc.array(op, { minLength: 2, maxLength: 24 }), async (ops) => {
    const run = randomBytes(4).toString('hex');
    const ids = await d.query<{ id: string }>(`INSERT INTO identities (app_id, openid) SELECT 'wxprop', $1 || '-' || g FROM generate_series(0, 3) g RETURNING id`, [run]);
    const users = ids.rows.map((r) => r.id);
    const account = (n: number) => `${run}-acct-${n}`;
    const results = await Promise.all(
      ops.map(async (o): Promise<LinkResult | 'unlinked' | 'defaulted' | 'nothing'> => {
        await new Promise((r) => setTimeout(r, o.delayMs));
        const svc = instances[o.on];
        if (o.kind === 'link')
          return svc.link({ merchantId: o.merchant, identityId: users[o.user]!, account: { id: account(o.account), display: null }, proof: 'binding-code', actor: 'test', source: 'api' });
        const active = await svc.listBindings({ merchantId: o.merchant, identityId: users[o.user]!, accountId: account(o.account), status: 'active' });
        if (!active[0]) return 'nothing';
        if (o.kind === 'default') {
          // Unlinked in the meantime: not found, and nothing changed.
          const made = await svc.setDefault({ merchantId: o.merchant, identityId: users[o.user]!, bindingId: active[0].id, actor: 'test' }).then(
            () => true,
            (err: unknown) => (err instanceof AppError && err.code === 'linking.not_found' ? false : Promise.reject(err)),
          );
          return made ? 'defaulted' : 'nothing';
        }
        await svc.revokeBinding({ merchantId: o.merchant, bindingId: active[0].id, actor: 'test', reason: 'user' });
        return 'unlinked';
      }),
    );
    const rows = (
      await d.query<{ id: string; merchant_id: string; identity_id: string; account_id: string; status: string; is_default: boolean }>(
        `SELECT id, merchant_id, identity_id, account_id, status, is_default FROM bindings WHERE account_id LIKE $1 || '-%'`,
        [run],
      )
    ).rows;
    const active = rows.filter((r) => r.status === 'active');
    const count = (key: (r: (typeof rows)[number]) => string, list = active) => {
      const m = new Map<string, number>();
      for (const r of list) m.set(key(r), (m.get(key(r)) ?? 0) + 1);
      return m;
    };
    // exclusive: one active binding per account; never two of one (merchant, user, account).
    for (const [k, n] of count((r) => `${r.merchant_id}|${r.account_id}`)) if (k.startsWith('excl|')) expect(n, k).toBe(1);
    for (const n of count((r) => `${r.merchant_id}|${r.identity_id}|${r.account_id}`).values()) expect(n).toBe(1);
    // maxAccountsPerUser, and exactly one default per user with any active binding.
    for (const [k, n] of count((r) => `${r.merchant_id}|${r.identity_id}`)) expect(n, k).toBeLessThanOrEqual(MERCHANTS.get(k.split('|')[0]!)!.binding.maxAccountsPerUser);
    for (const [k, n] of count((r) => `${r.merchant_id}|${r.identity_id}`, active.filter((r) => r.is_default))) expect(n, k).toBe(1);
    for (const k of count((r) => `${r.merchant_id}|${r.identity_id}`).keys()) expect(active.some((r) => r.is_default && `${r.merchant_id}|${r.identity_id}` === k), k).toBe(true);
    // Every `created` answer is a row with its webhook event and audit entry; refusals wrote nothing.
    const created = results.filter((r): r is Extract<LinkResult, { ok: true }> => typeof r === 'object' && r.ok && r.created);
    expect(created.length).toBe(rows.length);
    const ev = await d.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_events WHERE type = 'binding.created' AND data->>'account' LIKE $1 || '-%'`, [run]);
    expect(ev.rows[0]!.n).toBe(created.length);
    const audit = await d.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_log WHERE action = 'binding.linked' AND binding_id = ANY($1::uuid[])`, [rows.map((r) => r.id)]);
    expect(audit.rows[0]!.n).toBe(created.length);
  });
}

/** A Db whose per-user lock does nothing (for the check that the property can fail). */
export function withoutUserLock(d: Db): Db {
  const strip = <T extends { query: Db['query'] }>(q: T): Db['query'] => (sql, params) => (sql.includes('pg_advisory_xact_lock') ? q.query('SELECT 1') : q.query(sql, params)) as never;
  return { ...d, query: strip(d), transaction: (fn) => d.transaction((tx) => fn({ ...tx, query: strip(tx) } as Transaction)) };
}
