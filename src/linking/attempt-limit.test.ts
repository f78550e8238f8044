import { describe, expect, it } from 'vitest';
import { createMemoryKv } from '../store/kv-memory.ts';
import { attemptCounter, reserveAttempt } from './attempt-limit.ts';

const user = attemptCounter('test-user', 'u1');
const account = attemptCounter('test-account', 'a1');

describe('reserveAttempt (ASVS 5.0 2.4.1, 15.4.2)', () => {
  it('When 15 tries are reserved at once against a limit of 5 (none settled), then exactly 5 get a reservation and the counters stay at 5', async () => {
    const kv = createMemoryKv();
    const got = await Promise.all(Array.from({ length: 15 }, () => reserveAttempt(kv, [user, account], 5, 0)));
    expect(got.filter(Boolean)).toHaveLength(5);
    expect(await kv.get(user.count)).toBe('5');
    expect(await kv.get(account.count)).toBe('5');
    expect(await kv.get(user.inflight)).toBe('5');
  });

  it('When 15 tries that all fail race a limit of 5, then 5 fail and the other 10 are refused once those failures land', async () => {
    const kv = createMemoryKv();
    const outcomes = await Promise.all(
      Array.from({ length: 15 }, async () => {
        const r = await reserveAttempt(kv, [user, account], 5, 5_000);
        if (!r) return 'refused';
        await new Promise((res) => setTimeout(res, 20));
        await r.keep();
        return 'failed';
      }),
    );
    expect(outcomes.filter((o) => o === 'failed')).toHaveLength(5);
    expect(await kv.get(user.count)).toBe('5');
    expect(await kv.get(user.inflight)).toBe('0');
  });

  it('When the counter is full only of tries in flight that then succeed, then the waiting tries get their turn instead of a refusal', async () => {
    const kv = createMemoryKv();
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const r = await reserveAttempt(kv, [account], 2, 5_000);
        if (!r) return 'refused';
        await new Promise((res) => setTimeout(res, 5));
        await r.giveBack();
        return 'ok';
      }),
    );
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(20);
    expect(await kv.get(account.count)).toBe('0');
  });

  it('When a try is given back (not a failure), then it no longer counts, and settling twice changes nothing', async () => {
    const kv = createMemoryKv();
    const r = await reserveAttempt(kv, [user], 1, 0);
    expect(await reserveAttempt(kv, [user], 1, 0)).toBeNull();
    await r!.giveBack();
    await r!.keep();
    expect(await kv.get(user.count)).toBe('0');
    expect(await reserveAttempt(kv, [user], 1, 0)).not.toBeNull();
  });

  it('When the second counter holds max failures, then the first is left as it was (a refusal counts nowhere), even with time to wait', async () => {
    const kv = createMemoryKv();
    await kv.incr(account.count, 60_000, 3);
    expect(await reserveAttempt(kv, [user, account], 3, 5_000)).toBeNull();
    expect(await kv.get(user.count)).toBe('0');
    expect(await kv.get(user.inflight)).toBe('0');
    expect(await kv.get(account.count)).toBe('3');
  });

  it('When the window expires while a try is in flight, then giving it back leaves zero, not a credit for the next window', async () => {
    let t = 0;
    const kv = createMemoryKv({ now: () => t });
    const r = await reserveAttempt(kv, [user], 5, 0);
    t = 24 * 60 * 60_000;
    await r!.giveBack();
    expect(Number(await kv.get(user.count))).toBe(0);
    expect(Number(await kv.get(user.inflight))).toBe(0);
  });
});
