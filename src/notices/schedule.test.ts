/**
 * Quiet hours, quota resets and backoff (issue 7; wechat-protocol.md §9; SECURITY.md D4).
 */
import { describe, expect, it } from 'vitest';
import { defaultNoticesOptions } from './index.ts';
import { fullJitter, localDay, nextMinute, nextQuotaDay, quietUntil } from './schedule.ts';

const at = (iso: string) => Date.parse(iso);
const night = { start: '22:00', end: '08:00', timeZone: 'Asia/Shanghai' };
const lunch = { start: '12:00', end: '13:30', timeZone: 'Europe/Berlin' };

describe('quiet hours', () => {
  it.each([
    ['2025-03-01T13:59:59Z', null], // 21:59:59 Shanghai
    ['2025-03-01T14:00:00Z', '2025-03-02T00:00:00.000Z'], // 22:00 → 08:00 next day
    ['2025-03-01T16:30:12.345Z', '2025-03-02T00:00:00.000Z'], // 00:30 (after midnight)
    ['2025-03-01T23:59:59Z', '2025-03-02T00:00:00.000Z'], // 07:59:59
    ['2025-03-02T00:00:00Z', null], // 08:00: open
  ])('When it is %s in a 22:00–08:00 Shanghai window, then quiet hours end at %s', (now, until) => {
    const r = quietUntil(at(now), night);
    expect(r === null ? null : new Date(r).toISOString()).toBe(until);
  });

  it('When the window does not wrap midnight, then only the inside is quiet, in the merchant\'s zone', () => {
    expect(quietUntil(at('2025-07-01T10:15:00Z'), lunch)).toBe(at('2025-07-01T11:30:00Z')); // 12:15 CEST
    expect(quietUntil(at('2025-07-01T09:59:00Z'), lunch)).toBeNull();
  });

  it('When start equals end or there is no config, then nothing is quiet', () => {
    expect(quietUntil(at('2025-03-01T14:00:00Z'), { ...night, end: '22:00' })).toBeNull();
    expect(quietUntil(at('2025-03-01T14:00:00Z'), undefined)).toBeNull();
  });

  it("When a day is counted, then it is the merchant's local day", () => {
    expect(localDay(at('2025-03-01T16:30:00Z'), 'Asia/Shanghai')).toBe('2025-03-02');
    expect(localDay(at('2025-03-01T16:30:00Z'), 'Europe/Berlin')).toBe('2025-03-01');
  });
});

describe('quota resets', () => {
  it('When the daily quota is spent, then it resets at midnight Beijing time (16:00 UTC)', () => {
    expect(new Date(nextQuotaDay(at('2025-03-01T15:59:59Z'))).toISOString()).toBe('2025-03-01T16:00:00.000Z');
    expect(new Date(nextQuotaDay(at('2025-03-01T16:00:00Z'))).toISOString()).toBe('2025-03-02T16:00:00.000Z');
  });

  it('When the minute quota is spent, then it resets at the next minute', () => {
    expect(new Date(nextMinute(at('2025-03-01T04:00:20.500Z'))).toISOString()).toBe('2025-03-01T04:01:00.000Z');
  });
});

describe('full-jitter backoff', () => {
  it('When attempts grow, then the ceiling doubles up to the cap, and the delay is drawn below it', () => {
    const p = { baseMs: 1_000, capMs: 300_000 };
    expect(fullJitter(0, p, () => 0.999)).toBe(999);
    expect(fullJitter(3, p, () => 0.999)).toBe(7_992);
    expect(fullJitter(20, p, () => 0.999)).toBe(299_700);
    expect(fullJitter(5, p, () => 0)).toBe(0);
  });

  it('When WeChat answers -1 for hours, then the default policy still keeps the delivery queued (hours of retries, not minutes)', () => {
    const { backoff, maxAttempts } = defaultNoticesOptions;
    let expected = 0;
    let longest = 0;
    for (let a = 0; a < maxAttempts; a++) {
      expected += fullJitter(a, backoff, () => 0.5);
      longest += fullJitter(a, backoff, () => 0.999_999);
    }
    expect(expected).toBeGreaterThan(6 * 3600_000);
    expect(longest).toBeLessThan(48 * 3600_000);
  });
});
