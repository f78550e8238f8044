/**
 * How cost grows with the number of bindings (issue 9): 10k, 1M and (BENCH_SCALE=full)
 * 10M linked users in a database of their own, migrated with the real migrations and
 * bulk-loaded by `seedSyntheticBindings` (bench/lib/seed.ts). That seed drops the
 * indexes and keys, inserts the rows, rebuilds them from their catalog definitions and
 * throws unless the schema then equals a fresh migration; it ends with ANALYZE and a
 * CHECKPOINT. Schema, rows, heap order and lookup plans are those of seeding with every
 * index in place, at 3-5x the speed; only the indexes come out packed (about 15% smaller
 * at 1M, lookups a few hundredths of a millisecond faster; numbers in seed.ts).
 * At each size: seed time, table + index size, the binding lookups the login and the
 * merchant API make (the app's own query functions), and the whole login flow at a fixed,
 * moderate rate.
 */
import { performance } from 'node:perf_hooks';
import { findIdentityByOpenid } from '../src/linking/identities.queries.ts';
import { listBindings } from '../src/linking/bindings.queries.ts';
import type { Db } from '../src/store/db.ts';
import { driveFlows } from './lib/flow-driver.ts';
import { deploy } from './lib/deployment.ts';
import { seedSyntheticBindings, tableSizesMb } from './lib/seed.ts';
import { BENCH, bridgeUrl, progress, PUBLIC_PORT } from './lib/stack.ts';
import { bridgeLoginFlow } from './login-flow.ts';
import type { BenchContext, ResultRow, Scenario, ScenarioResult } from './scenarios.ts';

const FULL = process.env.BENCH_SCALE === 'full';
/** BENCH_SCALE_SIZES=10000,50000 overrides the steps (trial runs). */
const SIZES = process.env.BENCH_SCALE_SIZES?.split(',').map(Number).filter((n) => n > 0) ?? [10_000, 1_000_000, ...(FULL ? [10_000_000] : [])];
const LOOKUPS = 2_000;
/** Well under what one core sustains even on a busy machine, so the latency is the path's, not a queue's. */
const FLOW_RATE = Number(process.env.BENCH_SCALE_FLOW_RATE ?? 5);


const label = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`);

function percentiles(times: number[]): { p50: string; p99: string } {
  const s = [...times].sort((a, b) => a - b);
  const at = (p: number) => (s[Math.min(s.length - 1, Math.floor(s.length * p))] ?? 0).toFixed(2);
  return { p50: at(0.5), p99: at(0.99) };
}

/** The login's lookup (identity by openid, then its active bindings at the merchant) and the API's (bindings of an account). */
async function lookups(db: Db, n: number): Promise<{ byOpenid: number[]; byAccount: number[] }> {
  const byOpenid: number[] = [];
  const byAccount: number[] = [];
  for (let k = 0; k < LOOKUPS; k++) {
    const i = 1 + Math.floor(Math.random() * n);
    let t = performance.now();
    const identity = await findIdentityByOpenid(db, BENCH.appId, `oScale${String(i).padStart(22, '0')}`);
    if (!identity) throw new Error(`seeded identity ${i} not found`);
    const linked = await listBindings(db, { merchantId: BENCH.merchant, identityId: identity.id, status: 'active' });
    if (linked.length !== 1) throw new Error(`identity ${i}: ${linked.length} bindings`);
    byOpenid.push(performance.now() - t);
    t = performance.now();
    const byAcc = await listBindings(db, { merchantId: BENCH.merchant, accountId: `scale-${i}` });
    if (byAcc.length !== 1) throw new Error(`account scale-${i}: ${byAcc.length} bindings`);
    byAccount.push(performance.now() - t);
  }
  return { byOpenid, byAccount };
}

async function atSize(ctx: BenchContext, n: number): Promise<ResultRow> {
  const d = await deploy({ databaseUrl: ctx.databaseUrl, redisUrl: ctx.redisUrl, database: 'wxb_bench_scale', users: { prefix: 's', count: 200 } });
  try {
    progress(`cost growth: seeding ${label(n)} linked users`);
    const t0 = performance.now();
    await seedSyntheticBindings(d.db, n, undefined, progress);
    const seedSec = (performance.now() - t0) / 1000;
    const sizes = await tableSizesMb(d.db);
    const l = await lookups(d.db, n);
    const byOpenid = percentiles(l.byOpenid);
    const byAccount = percentiles(l.byAccount);
    const bridge = await d.startBridge({ port: PUBLIC_PORT, cpu: 0, role: 'web' });
    const flow = bridgeLoginFlow(bridgeUrl(PUBLIC_PORT), d.sandbox, d.userIds);
    await driveFlows(flow, { concurrency: 8, durationSec: 2, ratePerSec: FLOW_RATE });
    const flows = await driveFlows(flow, { concurrency: 8, durationSec: ctx.durationSec, ratePerSec: FLOW_RATE });
    return {
      name: `cost growth: ${label(n)} linked users (identity + subject + binding each)`,
      ...(bridge.peakRssMb() !== undefined ? { rssMb: bridge.peakRssMb() } : {}),
      custom: {
        'seed s': seedSec.toFixed(1),
        'identities/subjects/bindings MB (heap+indexes)': `${sizes.identities ?? '?'}/${sizes.subjects ?? '?'}/${sizes.bindings ?? '?'}`,
        'login lookup p50/p99 ms': `${byOpenid.p50}/${byOpenid.p99}`,
        'API lookup by account p50/p99 ms': `${byAccount.p50}/${byAccount.p99}`,
        [`login flow at ${FLOW_RATE}/s p50/p99 ms`]: `${flows.p50}/${flows.p99}`,
      },
      note: `${LOOKUPS} lookups of random seeded users, one at a time, from the bench process; ${flows.completed} flows, ${flows.failed} failed${flows.firstError ? ` (first error: ${flows.firstError})` : ''}.`,
    };
  } finally {
    await d.close();
  }
}

async function scale(ctx: BenchContext): Promise<ScenarioResult> {
  const rows: ResultRow[] = [];
  for (const n of SIZES) rows.push(await atSize(ctx, n));
  const last = rows.pop()!;
  const gate = FULL || SIZES.includes(10_000_000) ? '' : ' The 10M step runs only with BENCH_SCALE=full (its seed takes about 7 minutes and 9 GB of disk here).';
  return { before: rows, ...last, note: `${last.note ?? ''}${gate}`.trim() };
}

export const scaleScenarios: Scenario[] = [{ id: 'scale', name: 'cost growth', run: scale }];
