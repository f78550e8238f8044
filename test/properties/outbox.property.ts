/**
 * The notices outbox as a state machine (migration 501; SECURITY.md D2, D5; issue 7), driven
 * by random command sequences against the real SQL of src/notices: two workers claim
 * (FOR UPDATE SKIP LOCKED leases), record customer-service intents, write outcomes (some
 * after their lease was taken back: stale), the clock jumps past leases and the reaper runs,
 * and TEMPLATESENDJOBFINISH receipts arrive (also for unknown msgids and twice). After each
 * command, every delivery's change must be a legal transition:
 *
 *   queued → sending (claim) → queued | sent | delivered | failed | unknown (the lease holder,
 *   or the reaper: queued, or unknown for a customer-service send) ; sent → delivered | failed
 *   (receipt) ; delivered, failed, unknown: final.
 *
 * and a delivery with a definite answer (sent, delivered, failed, unknown) is never claimed
 * again: no second send.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { expect } from 'vitest';
import { claimDeliveries, markCustomerServiceIntent, reapExpiredLeases, writeOutcomes, type OutcomeRow } from '../../src/notices/deliveries.queries.ts';
import { finishTemplateJob, insertNotice } from '../../src/notices/notices.queries.ts';
import type { Outcome } from '../../src/notices/notices.types.ts';
import type { Db, Queryable } from '../../src/store/db.ts';

const LEASE_MS = 1_000;
const USERS = 3;

const LEGAL: Record<string, string[]> = {
  queued: ['sending'],
  sending: ['queued', 'sent', 'delivered', 'failed', 'unknown'],
  sent: ['delivered', 'failed'],
  delivered: [],
  failed: [],
  unknown: [],
};
const DEFINITE = new Set(['sent', 'delivered', 'failed', 'unknown']);

type Cmd =
  | { c: 'claim'; w: 0 | 1; limit: number }
  | { c: 'intent'; w: 0 | 1; pick: number }
  | { c: 'outcome'; w: 0 | 1; pick: number; kind: Outcome['status']; stale: boolean }
  | { c: 'expire' }
  | { c: 'tick'; ms: number }
  | { c: 'receipt'; pick: number; ok: boolean };

const worker = fc.constantFrom(0 as const, 1 as const);
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ c: fc.constant('claim' as const), w: worker, limit: fc.integer({ min: 1, max: USERS }) }),
  fc.record({ c: fc.constant('intent' as const), w: worker, pick: fc.nat(5) }),
  fc.record({ c: fc.constant('outcome' as const), w: worker, pick: fc.nat(5), kind: fc.constantFrom('sent', 'delivered', 'failed', 'unknown', 'queued'), stale: fc.boolean() }),
  fc.constant({ c: 'expire' as const }),
  fc.record({ c: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 400 }) }),
  fc.record({ c: fc.constant('receipt' as const), pick: fc.nat(5), ok: fc.boolean() }),
);

const outcomeOf = (kind: Outcome['status'], now: number, msgid: string): Outcome =>
  kind === 'sent'
    ? { status: 'sent', channel: 'template', msgid }
    : kind === 'delivered'
      ? { status: 'delivered', channel: 'customer-service' }
      : kind === 'failed'
        ? { status: 'failed', channel: 'template', errcode: 43004, error: 'refused', attempted: true }
        : kind === 'unknown'
          ? { status: 'unknown', channel: 'customer-service', error: 'timeout', attempted: true }
          : { status: 'queued', nextAt: now + 50, attempted: true, errcode: -1, error: 'busy', ambiguousSince: now };

export type Writer = (q: Queryable, rows: OutcomeRow[], p: { now: number; webhookMerchants: string[] }) => Promise<string[]>;

async function setUp(db: Db, merchantId: string, appId: string, now: number): Promise<void> {
  const ids = await db.query<{ id: string }>(`INSERT INTO identities (app_id, openid) SELECT $1, $1 || '-o' || g FROM generate_series(1, ${USERS}) g RETURNING id`, [appId]);
  await db.query(`INSERT INTO bindings (merchant_id, identity_id, account_id, exclusive, proof, created_by) SELECT $1, unnest($2::uuid[]), 'a-' || gen_random_uuid(), false, 'import', 'test'`, [
    merchantId,
    ids.rows.map((r) => r.id),
  ]);
  await insertNotice(
    db,
    { merchantId, clientId: 'c', idempotencyKey: 'k', requestHash: 'h', request: { to: { segment: 'all' }, template: 'payment_posted', data: { a: '1' }, channel: 'auto' } },
    { appId, nextAt: now },
  );
}

export function outboxProperty(db: Db, write: Writer) {
  return fc.asyncProperty(fc.array(cmd, { minLength: 4, maxLength: 30 }), async (cmds) => {
    const run = randomBytes(4).toString('hex');
    const merchantId = `m-${run}`;
    const appId = `wx${run}`;
    let now = Date.now();
    await setUp(db, merchantId, appId, now);
    const statuses = async () => new Map((await db.query<{ id: string; status: string }>('SELECT id, status FROM notice_deliveries WHERE merchant_id = $1', [merchantId])).rows.map((r) => [r.id, r.status]));
    let before = await statuses();
    expect([...before.values()]).toEqual(Array(USERS).fill('queued'));
    /** What each worker holds (possibly after its lease was taken back), and every msgid handed out. */
    const held: [Array<{ id: string; leaseId: string }>, Array<{ id: string; leaseId: string }>] = [[], []];
    const msgids: string[] = ['999999'];
    const definite = new Set<string>();
    for (const k of cmds) {
      if (k.c === 'claim') {
        const got = await claimDeliveries(db, { now, limit: k.limit, leaseId: crypto.randomUUID(), leaseMs: LEASE_MS, merchants: [merchantId], webhookMerchants: [merchantId] });
        // No second send: nothing with a definite answer is ever handed to a worker again.
        for (const d of got) expect(definite.has(d.id), `claimed ${before.get(d.id)} delivery`).toBe(false);
        held[k.w].push(...got.map((d) => ({ id: d.id, leaseId: d.leaseId })));
      } else if (k.c === 'intent') {
        const h = held[k.w][k.pick % Math.max(1, held[k.w].length)];
        if (h) await markCustomerServiceIntent(db, [h.id], h.leaseId);
      } else if (k.c === 'outcome') {
        const list = held[k.w];
        const h = list[k.pick % Math.max(1, list.length)];
        if (h) {
          list.splice(list.indexOf(h), 1);
          const msgid = String(100000 + msgids.length);
          msgids.push(msgid);
          const lease = (await db.query<{ lease_id: string | null; status: string }>('SELECT lease_id, status FROM notice_deliveries WHERE id = $1', [h.id])).rows[0]!;
          const written = await write(db, [{ id: h.id, leaseId: h.leaseId, outcome: outcomeOf(k.kind, now, msgid) }], { now, webhookMerchants: [merchantId] });
          // Only the current lease holder's answer counts; a stale one changes nothing.
          expect(written.length === 1).toBe(lease.lease_id === h.leaseId && lease.status === 'sending');
        }
      } else if (k.c === 'expire') {
        now += LEASE_MS + 1;
        await reapExpiredLeases(db, { now, limit: 100 });
      } else if (k.c === 'tick') {
        now += k.ms;
      } else {
        await finishTemplateJob(db, { appId, msgId: msgids[k.pick % msgids.length]!, status: k.ok ? 'success' : 'failed:user block', now, webhookMerchants: [merchantId] });
      }
      const after = await statuses();
      for (const [id, s] of after) {
        const was = before.get(id)!;
        if (s !== was) expect(LEGAL[was], `${was} → ${s} after ${JSON.stringify(k)}`).toContain(s);
        if (DEFINITE.has(s)) definite.add(id);
      }
      before = after;
    }
    // Final webhooks: exactly one per delivery that reached delivered/failed.
    const finals = [...before.values()].filter((s) => s === 'delivered' || s === 'failed').length;
    const hooks = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_events WHERE merchant_id = $1 AND type IN ('notice.delivered', 'notice.failed')`, [merchantId]);
    expect(hooks.rows[0]!.n).toBe(finals);
  });
}

/** A writer without the lease check: it answers for whatever it once held. */
export const leaseBlindWriter: Writer = async (q, rows, p) => {
  for (const r of rows) await q.query('UPDATE notice_deliveries SET status = $2, lease_id = $3 WHERE id = $1', [r.id, 'sending', r.leaseId]);
  return writeOutcomes(q, rows, p);
};
