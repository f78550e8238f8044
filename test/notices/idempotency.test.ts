/**
 * Idempotent notice requests across a config change (DESIGN.md "Merchant API"; SECURITY.md
 * D2: "a repeat returns the stored result"). Templates and the channel policy can be edited
 * in the admin UI while running, so a merchant's network retry of an accepted notice may
 * reach a process whose config no longer accepts that request: the key is looked up before
 * the request is checked, so the stored answer (or 409) comes back, never a 400.
 */
import { describe, expect, it } from 'vitest';
import type { NoticeRequest } from '../../src/notices/notices.types.ts';
import { sharedWorld, type Scenario } from './world.ts';

const world = sharedWorld();

const request = (account: string, extra: Partial<NoticeRequest> = {}): NoticeRequest => ({
  to: { account },
  channel: 'auto',
  template: 'payment_posted',
  data: { merchant: '信用卡中心', amount: '¥99.00', time: '2025-01-01 12:00' },
  ...extra,
});

/** The operator removes the template from the merchant's config; a fresh process serves the retry. */
function withoutTemplates(s: Scenario) {
  const m = s.config.merchants[0]!;
  (m.notices as { templates: Record<string, unknown> }).templates = {};
  return s.makeFeature().service;
}

describe('idempotent replay after a config change', () => {
  it('When the merchant retries an accepted notice after its template was removed from the config, then the stored 202 answer comes back and nothing new is queued', async () => {
    const s = await world().scenario();
    const u = await s.link();
    const first = await s.notice({ to: { account: u.account } }, 'key-accepted-1');
    expect(first.replayed).toBe(false);
    const after = withoutTemplates(s);
    const replay = await after
      .createNotice({ merchantId: s.merchantId, clientId: 'test-backend', idempotencyKey: 'key-accepted-1', request: request(u.account) })
      .catch((err: unknown) => err);
    expect(replay).toEqual({ ...first, replayed: true });
    expect(await s.deliveries()).toHaveLength(1);
  });

  it('When the key comes back with another body after the config change, then it is 409, not 400', async () => {
    const s = await world().scenario();
    const u = await s.link();
    await s.notice({ to: { account: u.account } }, 'key-accepted-2');
    const after = withoutTemplates(s);
    await expect(
      after.createNotice({ merchantId: s.merchantId, clientId: 'test-backend', idempotencyKey: 'key-accepted-2', request: request(u.account, { url: 'https://h5.bank.example/bill' }) }),
    ).rejects.toMatchObject({ code: 'notices.idempotency_conflict' });
  });

  it('When a new key names the removed template, then the request is still checked against the config and refused with 400', async () => {
    const s = await world().scenario();
    const u = await s.link();
    const after = withoutTemplates(s);
    await expect(after.createNotice({ merchantId: s.merchantId, clientId: 'test-backend', idempotencyKey: 'key-new-1', request: request(u.account) })).rejects.toMatchObject({
      code: 'request.invalid',
    });
    expect(await s.deliveries()).toHaveLength(0);
  });
});
