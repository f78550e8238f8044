/**
 * Fault injection for the fake WeChat's API endpoints: answer an errcode instead of
 * running the endpoint, add latency, or run the endpoint (commit its effect) and then
 * drop the connection — the case that makes clients retry a call that already happened
 * (a consumed code, a minted token, a sent template message).
 *
 * Which calls are hit: the n-th matching calls, every k-th, or with a probability drawn
 * from a seeded RNG (so a failing run can be replayed), at most `count` times.
 */
import type { Context, Next } from 'koa';
import { z } from 'zod';
import type { CallRecord } from './state.ts';
import { parseOrThrow } from './validate.ts';
import { callMeta, wxError } from './wx-response.ts';

export const faultSpecSchema = z
  .object({
    /** Exact path (`/cgi-bin/token`) or a prefix ending in `*` (`/cgi-bin/message/*`, `*`). */
    path: z.string().min(1).max(200),
    appId: z.string().min(1).optional(),
    errcode: z.number().int().optional(),
    errmsg: z.string().max(500).optional(),
    latencyMs: z.number().int().min(0).max(120_000).optional(),
    dropAfterCommit: z.boolean().optional(),
    dropBeforeCommit: z.boolean().optional(),
    nth: z.union([z.number().int().positive(), z.array(z.number().int().positive()).min(1)]).optional(),
    every: z.number().int().positive().optional(),
    probability: z.number().min(0).max(1).optional(),
    seed: z.number().int().optional(),
    count: z.number().int().positive().optional(),
  })
  .strict()
  .refine(
    (f) => f.errcode !== undefined || f.latencyMs !== undefined || f.dropAfterCommit || f.dropBeforeCommit,
    'a fault needs an effect: errcode, latencyMs, dropAfterCommit or dropBeforeCommit',
  )
  .refine((f) => !(f.errcode !== undefined && f.dropAfterCommit), 'errcode skips the endpoint; it cannot also commit');

export type FaultSpec = z.input<typeof faultSpecSchema>;

export interface FaultRule {
  spec: z.output<typeof faultSpecSchema>;
  seen: number;
  fired: number;
  rng: () => number;
}

/** mulberry32: tiny, seedable, good enough to pick which calls fail. */
export function seededRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export function createFaultRule(input: FaultSpec): FaultRule {
  const spec = parseOrThrow(faultSpecSchema, input);
  return { spec, seen: 0, fired: 0, rng: seededRng(spec.seed ?? 1) };
}

function pathMatches(pattern: string, path: string): boolean {
  return pattern.endsWith('*') ? path.startsWith(pattern.slice(0, -1)) : pattern === path;
}

/** Counts this call for the rule and says whether the fault fires on it. */
function fires(rule: FaultRule): boolean {
  rule.seen += 1;
  const { nth, every, probability, count } = rule.spec;
  if (count !== undefined && rule.fired >= count) return false;
  let hit = true;
  if (nth !== undefined) hit = (Array.isArray(nth) ? nth : [nth]).includes(rule.seen);
  else if (every !== undefined) hit = rule.seen % every === 0;
  else if (probability !== undefined) hit = rule.rng() < probability;
  if (hit) rule.fired += 1;
  return hit;
}

export interface FaultDeps {
  rules: () => FaultRule[];
  /** Best-effort appid of a request before its handler runs (query, token owner or JSON body). */
  appIdOf: (ctx: Context) => Promise<string | undefined>;
  markFault: (ctx: Context, kind: NonNullable<CallRecord['fault']>) => void;
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function createFaultMiddleware(deps: FaultDeps) {
  return async function faultMiddleware(ctx: Context, next: Next): Promise<void> {
    const matching = deps.rules().filter((r) => pathMatches(r.spec.path, ctx.path));
    if (matching.length === 0) return next();
    const appId = await deps.appIdOf(ctx);
    const active = matching.filter((r) => r.spec.appId === undefined || r.spec.appId === appId).filter(fires);
    if (active.length === 0) return next();

    const latency = Math.max(0, ...active.map((r) => r.spec.latencyMs ?? 0));
    if (latency > 0) {
      deps.markFault(ctx, 'latency');
      await delay(latency);
    }
    if (active.some((r) => r.spec.dropBeforeCommit)) {
      deps.markFault(ctx, 'drop_before');
      dropConnection(ctx);
      return;
    }
    const withCode = active.find((r) => r.spec.errcode !== undefined);
    if (withCode?.spec.errcode !== undefined) {
      deps.markFault(ctx, 'errcode');
      if (appId) callMeta(ctx).appId = appId;
      wxError(ctx, withCode.spec.errcode, withCode.spec.errmsg);
      return;
    }
    await next();
    if (active.some((r) => r.spec.dropAfterCommit)) {
      deps.markFault(ctx, 'drop_after');
      dropConnection(ctx);
    }
  };
}

function dropConnection(ctx: Context): void {
  ctx.respond = false;
  ctx.req.socket.destroy();
}
