/**
 * Fuzz oracles (SECURITY.md B4): crash-only fuzzing missed fast-xml-parser's entity
 * blow-ups, so every target here also checks time per input and output size.
 * FUZZ_RUNS raises the number of inputs for long runs (`npm run fuzz`).
 */
import { performance } from 'node:perf_hooks';

export const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
export const MAX_MS_PER_INPUT = 50;

export interface OracleStats {
  worstMs: number;
  inputs: number;
}

/**
 * Runs `fn` on `input`; returns its result or the error it threw. Fails when it takes
 * over 50 ms (re-measured once, to tell a GC pause from a real blow-up) or when the
 * error is not one of the expected types.
 */
export function underOracle<T>(stats: OracleStats, input: unknown, fn: () => T, expectedErrors: (new (...a: never[]) => Error)[]): T | Error {
  const once = (): { ms: number; value: T | Error } => {
    const t0 = performance.now();
    let value: T | Error;
    try {
      value = fn();
    } catch (err) {
      if (!expectedErrors.some((E) => err instanceof E)) throw new Error(`unexpected ${String(err)} for input ${JSON.stringify(input).slice(0, 200)}`);
      value = err as Error;
    }
    return { ms: performance.now() - t0, value };
  };
  // Re-measured up to twice: a GC pause or a busy shared core must not pass for a blow-up;
  // a real amplification is slow every time.
  let r = once();
  for (let i = 0; i < 2 && r.ms > MAX_MS_PER_INPUT; i++) r = once();
  if (r.ms > MAX_MS_PER_INPUT) throw new Error(`took ${r.ms.toFixed(1)} ms (> ${MAX_MS_PER_INPUT}) for input ${JSON.stringify(input).slice(0, 200)}`);
  stats.worstMs = Math.max(stats.worstMs, r.ms);
  stats.inputs++;
  return r.value;
}

/** Output-size oracle: what a parser returns can never be larger than what it read. */
export function jsonSize(v: unknown): number {
  return Buffer.byteLength(JSON.stringify(v) ?? '', 'utf8');
}

/** `underOracle` for async targets: the same 50 ms budget (re-measured twice), the same error check. */
export async function underOracleAsync<T>(stats: OracleStats, input: unknown, fn: () => Promise<T>, expectedErrors: (new (...a: never[]) => Error)[]): Promise<T | Error> {
  const once = async (): Promise<{ ms: number; value: T | Error }> => {
    const t0 = performance.now();
    let value: T | Error;
    try {
      value = await fn();
    } catch (err) {
      if (!expectedErrors.some((E) => err instanceof E)) throw new Error(`unexpected ${String(err)} for input ${JSON.stringify(input).slice(0, 200)}`);
      value = err as Error;
    }
    return { ms: performance.now() - t0, value };
  };
  let r = await once();
  for (let i = 0; i < 2 && r.ms > MAX_MS_PER_INPUT; i++) r = await once();
  if (r.ms > MAX_MS_PER_INPUT) throw new Error(`took ${r.ms.toFixed(1)} ms (> ${MAX_MS_PER_INPUT}) for input ${JSON.stringify(input).slice(0, 200)}`);
  stats.worstMs = Math.max(stats.worstMs, r.ms);
  stats.inputs++;
  return r.value;
}
