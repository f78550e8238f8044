/**
 * The flow driver of `npm run bench` (bench/lib/flow-driver.ts): a closed loop for the
 * maximum, a fixed schedule for latency at a given load, timed from each flow's slot so a
 * server that falls behind shows its queue (no coordinated omission).
 */
import { describe, expect, it } from 'vitest';
import { driveFlows } from '../../bench/lib/flow-driver.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('driveFlows', () => {
  it('When flows run back to back, then every completed flow is counted and timed', async () => {
    const r = await driveFlows(() => sleep(20), { concurrency: 4, durationSec: 0.5 });
    // 4 in flight × 20 ms each ≈ 200 flows/s; timers on a busy machine only make it slower.
    expect(r.completed).toBeGreaterThan(40);
    expect(r.completed).toBeLessThanOrEqual(4 * 26);
    expect(r.p50).toBeGreaterThanOrEqual(19);
    expect(r.failed).toBe(0);
  });

  it('When a rate is set, then flows start on that schedule and no faster', async () => {
    let started = 0;
    const r = await driveFlows(
      async () => {
        started++;
        await sleep(2);
      },
      { concurrency: 16, durationSec: 1, ratePerSec: 40 },
    );
    expect(started).toBeLessThanOrEqual(41);
    expect(started).toBeGreaterThan(25);
    expect(r.completed).toBe(started);
  });

  it('When the server cannot keep up with the schedule, then the wait for a free slot counts in the latency', async () => {
    // One flow in flight, 50 ms each, asked for 100/s: every flow waits behind the previous ones.
    const r = await driveFlows(() => sleep(50), { concurrency: 1, durationSec: 0.6, ratePerSec: 100 });
    expect(r.p50).toBeGreaterThanOrEqual(50);
    expect(r.p99).toBeGreaterThan(150);
  });

  it('When flows fail, then they are counted apart, with the first error', async () => {
    let n = 0;
    const r = await driveFlows(
      async () => {
        await sleep(5);
        if (n++ % 2 === 0) throw new Error(`boom ${n}`);
      },
      { concurrency: 1, durationSec: 0.3 },
    );
    expect(r.failed).toBeGreaterThan(0);
    expect(r.completed).toBeGreaterThan(0);
    expect(r.firstError).toBe('boom 1');
  });
});
