/**
 * An operator's retry of a notice delivery (issue 8 "retry"; issue 7 status rules): only
 * `failed` or `unknown` move, back to `queued` with a fresh attempt budget, atomically with
 * the caller's record; `unknown` only when the caller accepts the duplicate risk. Checked
 * against the sandbox: what reached WeChat, not only our rows.
 */
import { describe, expect, it } from 'vitest';
import { keyspace, quotaDay } from '../../src/store/keyspace.ts';
import type { DeliveryBefore } from '../../src/notices/index.ts';
import { sharedWorld, until, type Scenario } from './world.ts';

const world = sharedWorld();

const TEMPLATE = '/cgi-bin/message/template/send';

/** A delivery WeChat refused for good (43004: the user does not follow). */
async function failedDelivery(s: Scenario) {
  const u = await s.link();
  world().sandbox.inject({ path: TEMPLATE, appId: s.appId, errcode: 43004, count: 1 });
  const n = await s.notice({ to: { account: u.account } });
  await s.settle();
  const [d] = await s.deliveries(n.id);
  expect(d).toMatchObject({ status: 'failed', errcode: 43004 });
  return { u, d: d! };
}

const statusOf = async (id: string) =>
  (await world().db.query<{ status: string; attempts: number; errcode: number | null; ambiguous_since: Date | null }>('SELECT status, attempts, errcode, ambiguous_since FROM notice_deliveries WHERE id = $1', [id])).rows[0]!;

describe('retryDelivery', () => {
  it('When a failed delivery is retried, then it is queued with a fresh budget, the record runs in its transaction, and the next send reaches WeChat once', async () => {
    const s = await world().scenario();
    const { u, d } = await failedDelivery(s);
    const seen: DeliveryBefore[] = [];
    const res = await s.service.retryDelivery({ deliveryId: d.id, merchantId: s.merchantId, acceptDuplicateRisk: false, record: async (_q, before) => void seen.push(before) });
    expect(res).toMatchObject({ outcome: 'retried', before: { status: 'failed', errcode: 43004, attempts: 1 } });
    expect(seen).toHaveLength(1);
    expect(await statusOf(d.id)).toMatchObject({ status: 'queued', attempts: 0, errcode: null });
    await s.settle();
    expect((await s.deliveries())[0]).toMatchObject({ status: 'delivered', channel: 'template' });
    const reached = world().sandbox.messages({ appId: s.appId }).filter((m) => m.openid === u.openid);
    expect(reached).toHaveLength(1);
    // Both calls (the refused one and the retry) count against the account's template quota.
    // Counts are gathered for a second, then written in one increment.
    const counted = async () => Number(await world().kv.get(keyspace.wechat.callCounter(s.appId, 'template', quotaDay(Date.now()))));
    await until(async () => (await counted()) >= 2, 5_000);
    expect(await counted()).toBe(world().sandbox.calls(TEMPLATE).filter((c) => c.appId === s.appId).length);
    expect(await counted()).toBe(2);
    // The token owner counts its fetches the same way (the dashboard's "token fetches").
    const fetches = world().sandbox.calls('/cgi-bin/stable_token').filter((c) => c.appId === s.appId).length;
    expect(fetches).toBeGreaterThan(0);
    expect(Number(await world().kv.get(keyspace.wechat.callCounter(s.appId, 'token', quotaDay(Date.now()))))).toBe(fetches);
  });

  it('When an unknown delivery is retried without accepting the duplicate risk, then nothing moves; with it, it is queued and its ambiguity cleared', async () => {
    const s = await world().scenario();
    const { d } = await failedDelivery(s);
    await world().db.query(`UPDATE notice_deliveries SET status = 'unknown', channel = 'customer-service', error = 'transport:timeout', ambiguous_since = now() WHERE id = $1`, [d.id]);
    expect(await s.service.retryDelivery({ deliveryId: d.id, merchantId: s.merchantId, acceptDuplicateRisk: false })).toEqual({ outcome: 'needs_confirmation' });
    expect((await statusOf(d.id)).status).toBe('unknown');
    const res = await s.service.retryDelivery({ deliveryId: d.id, merchantId: s.merchantId, acceptDuplicateRisk: true });
    expect(res).toMatchObject({ outcome: 'retried', before: { status: 'unknown', channel: 'customer-service' } });
    expect(await statusOf(d.id)).toMatchObject({ status: 'queued', attempts: 0, ambiguous_since: null });
  });

  it('When a delivery is queued, sending, sent or delivered, then a retry is refused with its status and nothing changes', async () => {
    const s = await world().scenario();
    const { d } = await failedDelivery(s);
    for (const status of ['queued', 'sending', 'sent', 'delivered']) {
      await world().db.query('UPDATE notice_deliveries SET status = $2, attempts = 3 WHERE id = $1', [d.id, status]);
      expect(await s.service.retryDelivery({ deliveryId: d.id, merchantId: s.merchantId, acceptDuplicateRisk: true })).toEqual({ outcome: 'not_retryable', status });
      expect(await statusOf(d.id)).toMatchObject({ status, attempts: 3 });
    }
  });

  it('When the delivery is another merchant’s, unknown or not a uuid, then it is not found and nothing changes', async () => {
    const s = await world().scenario();
    const { d } = await failedDelivery(s);
    expect(await s.service.retryDelivery({ deliveryId: d.id, merchantId: 'someone-else', acceptDuplicateRisk: true })).toEqual({ outcome: 'not_found' });
    expect(await s.service.retryDelivery({ deliveryId: '00000000-0000-4000-8000-000000000000', merchantId: null, acceptDuplicateRisk: true })).toEqual({ outcome: 'not_found' });
    expect(await s.service.retryDelivery({ deliveryId: "x' OR 1=1 --", merchantId: null, acceptDuplicateRisk: true })).toEqual({ outcome: 'not_found' });
    expect((await statusOf(d.id)).status).toBe('failed');
  });

  it('When the caller’s record fails, then the retry is rolled back with it (one atomic step)', async () => {
    const s = await world().scenario();
    const { d } = await failedDelivery(s);
    const boom = s.service.retryDelivery({
      deliveryId: d.id,
      merchantId: null,
      acceptDuplicateRisk: false,
      record: async () => {
        throw new Error('audit down');
      },
    });
    await expect(boom).rejects.toThrow('audit down');
    expect(await statusOf(d.id)).toMatchObject({ status: 'failed', attempts: 1, errcode: 43004 });
  });

  it('When two operators retry the same failed delivery at once, then exactly one retry happens', async () => {
    const s = await world().scenario();
    const { d } = await failedDelivery(s);
    let records = 0;
    const results = await Promise.all(
      Array.from({ length: 5 }, () => s.service.retryDelivery({ deliveryId: d.id, merchantId: s.merchantId, acceptDuplicateRisk: false, record: async () => void records++ })),
    );
    expect(results.filter((r) => r.outcome === 'retried')).toHaveLength(1);
    expect(results.filter((r) => r.outcome === 'not_retryable')).toHaveLength(4);
    expect(records).toBe(1);
  });
});
