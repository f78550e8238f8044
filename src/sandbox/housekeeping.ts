/**
 * Keeps a long-running sandbox (a demo left open for days, a benchmark hammering it) from
 * growing without bound: logs keep their newest `logCap` entries, and codes, user tokens
 * and template de-duplication keys are forgotten a day after they stopped mattering.
 */
import type { SandboxState } from './state.ts';

const DAY_MS = 86_400_000;

/** Appends, then trims in batches (10% slack) so trimming stays cheap. */
export function appendCapped<T>(list: T[], item: T, cap: number): void {
  list.push(item);
  if (list.length > cap + Math.ceil(cap / 10)) list.splice(0, list.length - cap);
}

export function pruneState(state: SandboxState, now: number): void {
  for (const [k, c] of state.codes) if (now - c.expiresAt > DAY_MS) state.codes.delete(k);
  for (const [k, t] of state.refreshTokens) {
    if (now - t.refreshExpiresAt > DAY_MS) {
      state.refreshTokens.delete(k);
      state.userTokens.delete(t.accessToken);
    }
  }
  const dedupMs = state.limits.templateDedupSec * 1000;
  for (const [k, d] of state.templateDedup) if (now - d.at > dedupMs + DAY_MS) state.templateDedup.delete(k);
  for (const [k, t] of state.accountTokens) if (now - Math.min(t.expiresAt, t.invalidAfter ?? Infinity) > DAY_MS) state.accountTokens.delete(k);
  for (const [k, l] of state.qrLogins) if (now - l.expiresAt > DAY_MS) state.qrLogins.delete(k);
  for (const [k, d] of state.qrTickets) if (d.expiresAt !== undefined && now - d.expiresAt > DAY_MS) state.qrTickets.delete(k);
}
