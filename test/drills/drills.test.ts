/**
 * Fault drills, short CI form (issue 9), on one app: Redis, then PostgreSQL, stopped and
 * restarted under a login, a code grant, a notice and a push (store-outage.ts); WeChat
 * answering -1 to every call (wechat-outage.ts); two instances rotating signing keys at once
 * (rotation.ts). Embedded runs take the stores down with refusing wrappers; with DATABASE_URL
 * and REDIS_URL, by cutting TCP proxies. A worker killed mid-batch is drilled by
 * test/notices/faults.test.ts (SIGKILLed worker processes on PostgreSQL, abandoned dispatchers
 * on PGlite). `npm run drills` runs all of them for longer, in cycles.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_TIMEOUT_MS } from '../linking/helpers.ts';
import { startDrillApp, type DrillApp } from './kit.ts';
import { rotationDrill } from './rotation.ts';
import { storeOutageDrill } from './store-outage.ts';
import { wechatOutageDrill } from './wechat-outage.ts';

let d: DrillApp;
beforeAll(async () => {
  d = await startDrillApp();
}, BOOT_TIMEOUT_MS);
afterAll(async () => {
  await d?.close();
});

describe.each([
  ['kv', 'Redis'],
  ['db', 'PostgreSQL'],
] as const)('drill: %s down and back', (which, name) => {
  it(`When ${name} stops and restarts under load, then 503s within 1 s, full recovery within 5 s, no token without state and binding, nothing lost`, async () => {
    const r = await storeOutageDrill(d, which, { cycles: 1, downMs: 1_500 });
    console.log(`[drill] ${JSON.stringify(r)}`);
    expect(r.violations).toEqual([]);
    expect(r.unreadyMs).toBeLessThan(1_000);
    expect(r.recoveryMs).toBeLessThan(5_000);
    // The drill did exercise both sides: refusals while down, successes after.
    expect(r.ops.login!.refused).toBeGreaterThan(0);
    expect(r.ops.grant!.refused).toBeGreaterThan(0);
    // Pushes: with Redis down the de-duplication falls back to PostgreSQL and they may be
    // acknowledged (D1); with PostgreSQL down nothing durable can be written, so none is.
    if (which === 'db') expect(r.ops.push!.ok).toBe(0);
    expect(r.pushesAcked).toBeGreaterThan(0);
    expect(r.tokens).toBeGreaterThan(0);
    expect(r.notices.keys).toBeGreaterThan(0);
    expect(r.notices.sentOnce).toBe(r.notices.keys);
  }, 60_000);
});

describe('drill: WeChat -1 on every call', () => {
  it('When every WeChat API call answers -1, then logins fail closed at once, notices wait queued and go out once after, pushes and grants go on', async () => {
    const r = await wechatOutageDrill(d, { cycles: 1, downMs: 1_500 });
    console.log(`[drill] ${JSON.stringify(r)}`);
    expect(r.violations).toEqual([]);
    expect(r.ops.login!.refused).toBeGreaterThan(0);
    expect(r.ops.grant!.ok).toBeGreaterThan(0);
    expect(r.notices.sentOnce).toBe(r.notices.keys);
    expect(r.notices.keys).toBeGreaterThan(0);
    expect(r.recoveryMs).toBeLessThan(5_000);
  }, 60_000);
});

describe('drill: two instances rotating keys at once', () => {
  it('When both rotate at the same moment (with the lead passed, then forced), then one promotion per lead, one current and one next key, and every token still verifies', async () => {
    const r = await rotationDrill(d, { cycles: 4 });
    console.log(`[drill] ${JSON.stringify({ promotions: r.promotions, refusals: r.refusals, tokens: r.tokens, violations: r.violations })}`);
    expect(r.violations).toEqual([]);
    expect(r.promotions).toBe(2 * 1 + 2 * 2);
    expect(r.refusals).toBe(2);
  }, 60_000);
});
