/**
 * The sender's pure parts: the retry curve and the option check that keeps one merchant from
 * taking a whole worker (DESIGN.md "Webhooks").
 */
import { describe, expect, it } from 'vitest';
import { checkSenderOptions, retryDelay } from './sender.ts';

describe('webhook sender options', () => {
  it('When one merchant may take more than half of a worker, or no slot at all, then the options are refused', () => {
    expect(() => checkSenderOptions({ maxInFlight: 200, maxInFlightPerMerchant: 20 })).not.toThrow();
    expect(() => checkSenderOptions({ maxInFlight: 4, maxInFlightPerMerchant: 2 })).not.toThrow();
    expect(() => checkSenderOptions({ maxInFlight: 4, maxInFlightPerMerchant: 20 })).toThrow(/maxInFlightPerMerchant/);
    expect(() => checkSenderOptions({ maxInFlight: 200, maxInFlightPerMerchant: 0 })).toThrow(/maxInFlightPerMerchant/);
    expect(() => checkSenderOptions({ maxInFlight: 200, maxInFlightPerMerchant: Number.NaN })).toThrow(/maxInFlightPerMerchant/);
  });

  it('When attempts fail, then the delay doubles from the base up to the cap, within ±20 %', () => {
    const p = { baseMs: 5_000, capMs: 3600_000 };
    expect([1, 2, 3].map((n) => retryDelay(n, p, () => 0.5))).toEqual([5_000, 10_000, 20_000]);
    expect(retryDelay(40, p, () => 0.5)).toBe(3600_000);
    expect(retryDelay(1, p, () => 0)).toBe(4_000);
    expect(retryDelay(1, p, () => 1)).toBe(6_000);
  });
});
