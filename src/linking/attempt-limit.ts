/**
 * Failed-attempt limits of the proofs (verify-api, binding codes): DESIGN.md "Linking
 * protocols", ASVS 5.0 2.4.1 (anti-automation) and 15.4.2 (no check-then-act).
 *
 * Reading a counter, trying the guess and counting the failure afterwards lets parallel
 * requests all pass the read before any failure lands: a user then gets as many guesses as
 * requests it can open at once. So a try is *reserved* first: one atomic INCR per counter,
 * refused when any goes past the limit. The caller keeps the reservation when the answer is
 * a definite failure and gives it back otherwise (a success, or no answer at all), so a
 * counter is always "failures + tries in flight" and never lets more than `max` failures
 * through.
 *
 * Tries in flight may yet succeed: 200 people proving one card at once must not be told
 * "too many attempts" when nobody failed. So each counter has an in-flight companion, a
 * hint only (the guarantee rests on the counter alone): when the counter is full but not
 * with failures, the try waits for a turn instead of being refused.
 */
import { keyspace, ttl } from '../store/keyspace.ts';
import type { Kv } from '../store/kv.ts';

export interface AttemptCounter {
  /** Failures + tries in flight, in a window of `ttl.proofFailures` from the first try. */
  count: string;
  /** Tries in flight; lives no longer than a proof may take. */
  inflight: string;
}

/** The counter of `scope` (e.g. 'verify-user') for `id`, with its in-flight companion. */
export const attemptCounter = (scope: string, id: string): AttemptCounter => ({
  count: keyspace.linking.attempts(scope, id),
  inflight: keyspace.linking.attempts(`${scope}-inflight`, id),
});

export interface AttemptReservation {
  /** The try was not a failure (a success, or no answer): it no longer counts. */
  giveBack(): Promise<void>;
  /** The try failed: it stays counted for the window. */
  keep(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function decrement(kv: Kv, key: string, ttlMs: number): Promise<void> {
  const n = await kv.incr(key, ttlMs, -1);
  // The window expired while the try was in flight, so the decrement re-created the key at
  // -1 (with a fresh TTL): put it back to zero rather than grant an extra try next window.
  if (n < 0) await kv.incr(key, ttlMs, -n);
}

async function tryReserve(kv: Kv, counters: readonly AttemptCounter[], max: number): Promise<AttemptCounter | null> {
  // In flight first, counted second: `count - inflight` then never overstates the failures.
  for (const c of counters) await kv.incr(c.inflight, ttl.proof);
  for (const [i, c] of counters.entries()) {
    if ((await kv.incr(c.count, ttl.proofFailures)) <= max) continue;
    // A refused try is not a failure: it must not keep the user or account locked longer.
    for (const taken of counters.slice(0, i + 1)) await decrement(kv, taken.count, ttl.proofFailures);
    for (const d of counters) await decrement(kv, d.inflight, ttl.proof);
    return c;
  }
  return null;
}

/**
 * Reserves one try against every counter; null, with nothing reserved, when any of them
 * holds `max` failures, or is still full of tries in flight after `waitMs`.
 */
export async function reserveAttempt(kv: Kv, counters: readonly AttemptCounter[], max: number, waitMs: number): Promise<AttemptReservation | null> {
  const deadline = Date.now() + waitMs;
  for (let delay = 10; ; delay = Math.min(delay * 2, 100)) {
    const full = await tryReserve(kv, counters, max);
    if (!full) break;
    const failures = Number((await kv.get(full.count)) ?? 0) - Number((await kv.get(full.inflight)) ?? 0);
    if (failures >= max || Date.now() + delay > deadline) return null;
    await sleep(delay);
  }
  let settled = false;
  const settle = async (failed: boolean) => {
    if (settled) return;
    settled = true;
    if (!failed) for (const c of counters) await decrement(kv, c.count, ttl.proofFailures);
    for (const c of counters) await decrement(kv, c.inflight, ttl.proof);
  };
  return { giveBack: () => settle(false), keep: () => settle(true) };
}
