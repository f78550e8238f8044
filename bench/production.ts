/**
 * Scenarios against a production-mode bridge (config file, sandbox as its own process):
 * the merchant login flow beside node-oidc-provider's minimal code flow (issue 5), and
 * peak RSS under load beside the demo-mode process (issue 9).
 */
import { Redis } from 'ioredis';
import type { Db } from '../src/store/db.ts';
import { cpuMsOf } from './lib/cpu.ts';
import { driveFlows, type FlowResult } from './lib/flow-driver.ts';
import { deploy } from './lib/deployment.ts';
import { measure, type LoadResult } from './lib/load.ts';
import { assertFree, describeRuntime, spawnPinned, waitUntilUp, type Proc } from './lib/proc.ts';
import { measurePush } from './lib/push-sample.ts';
import { BENCH, basicAuth, bridgeUrl, progress, PUBLIC_PORT } from './lib/stack.ts';
import { bridgeLoginFlow, HopTimes } from './login-flow.ts';
import { oidcProviderFlow } from './oidc-baseline.ts';
import type { BenchContext, Scenario, ScenarioResult } from './scenarios.ts';

const CONCURRENCY = Number(process.env.BENCH_FLOW_CONCURRENCY ?? 16);

const OIDC_PORT = 3914;

/** Warm-up, the maximum (closed loop), then p99 at half that rate (SECURITY.md E). */
async function measureFlows(flow: () => Promise<void>, durationSec: number): Promise<{ max: FlowResult; half: FlowResult }> {
  await driveFlows(flow, { concurrency: CONCURRENCY, durationSec: Math.min(3, durationSec) });
  const max = await driveFlows(flow, { concurrency: CONCURRENCY, durationSec });
  const half = await driveFlows(flow, { concurrency: CONCURRENCY, durationSec, ratePerSec: Math.max(1, max.flowsPerSec / 2) });
  return { max, half };
}

interface FlowCost {
  cpuMs: number;
  xact: number;
  /** Rows inserted, updated or deleted per flow, by table: "table n, …". */
  writes: string;
  /** Commands Redis executed per flow (the whole server: nothing else uses it during the run). */
  redisCalls: number;
}

interface CostReading {
  cpuMs: number;
  xact: number;
  writes: Map<string, number>;
  redisCalls: number;
}

/**
 * What the bridge and its database have done so far: the bridge's CPU, the bench database's
 * committed transactions and rows written by table. PostgreSQL publishes a backend's counts
 * when it goes idle (within about a second), so the reading first lets the pool settle.
 */
async function readCost(db: Db, redis: Redis, bridge: Proc): Promise<CostReading> {
  await new Promise((r) => setTimeout(r, 1500));
  const stats = await redis.info('commandstats');
  const redisCalls = [...stats.matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  const cpuMs = cpuMsOf(bridge.child.pid) ?? Number.NaN;
  const x = await db.query<{ n: string }>('SELECT xact_commit::int8::text AS n FROM pg_stat_database WHERE datname = current_database()');
  const t = await db.query<{ relname: string; w: string }>('SELECT relname, (n_tup_ins + n_tup_upd + n_tup_del)::text AS w FROM pg_stat_user_tables');
  return { cpuMs, xact: Number(x.rows[0]!.n), writes: new Map(t.rows.map((r) => [r.relname, Number(r.w)])), redisCalls };
}

/** The cost per flow between two readings. */
function costPerFlow(a: CostReading, b: CostReading, flows: number): FlowCost {
  const per = (n: number) => n / Math.max(1, flows);
  const writes = [...b.writes]
    .map(([table, w]) => [table, per(w - (a.writes.get(table) ?? 0))] as const)
    .filter(([, w]) => w >= 0.005)
    .sort((x, y) => y[1] - x[1])
    .map(([table, w]) => `${table} ${w.toFixed(2)}`)
    .join(', ');
  // The later reading's own queries (two SQL, one INFO) are not the flows'.
  return { cpuMs: per(b.cpuMs - a.cpuMs), xact: per(b.xact - a.xact - 2), writes, redisCalls: per(b.redisCalls - a.redisCalls - 1) };
}

/** A flow measurement in the table's shape: "req/s" is flows/s, latencies are per whole flow. */
const asLoad = ({ max, half }: { max: FlowResult; half: FlowResult }): LoadResult => ({
  rps: max.flowsPerSec,
  p50: max.p50,
  p99: max.p99,
  p99AtHalf: half.p99,
  non2xx: max.failed + half.failed,
  errors: 0,
});

const errorsOf = (...r: FlowResult[]): string =>
  r
    .map((x) => x.firstError)
    .filter(Boolean)
    .map((e) => `first error: ${e}`)
    .join('; ');

const FAIRNESS =
  `Same driver for both (bench/lib/flow-driver.ts: fetch, a cookie jar per flow, redirects followed by hand), ${CONCURRENCY} flows in flight, ` +
  'each server alone on core 0 while it is measured, PKCE S256 + state + nonce + an ES256 ID token on both, scope openid (no refresh token). ' +
  'node-oidc-provider: in-memory adapter, login and consent granted by its interaction hook, no upstream; ' +
  'wxbridge: config file, real PostgreSQL and Redis, and one more hop to WeChat (the sandbox process, core 1) with a code exchange, so it does strictly more work per flow.';

async function loginFlow(ctx: BenchContext): Promise<ScenarioResult> {
  const d = await deploy({ databaseUrl: ctx.databaseUrl, redisUrl: ctx.redisUrl, database: 'wxb_bench_flow', users: { prefix: 'f', count: 400 } });
  let redis: Redis | undefined;
  try {
    const bridge = await d.startBridge({ port: PUBLIC_PORT, cpu: 0, role: 'web' });
    const base = bridgeUrl(PUBLIC_PORT);
    redis = new Redis(ctx.redisUrl, { maxRetriesPerRequest: 1 });
    progress('login flow: wxbridge');
    const hops = new HopTimes();
    const flow = bridgeLoginFlow(base, d.sandbox, d.userIds, { hops });
    await driveFlows(flow, { concurrency: CONCURRENCY, durationSec: Math.min(3, ctx.durationSec) });
    // The maximum, with the bridge's CPU and the database's work per flow (SECURITY.md T1, T14).
    const before = await readCost(d.db, redis, bridge);
    const max = await driveFlows(flow, { concurrency: CONCURRENCY, durationSec: ctx.durationSec });
    const cost = costPerFlow(before, await readCost(d.db, redis, bridge), max.completed);
    hops.clear();
    const half = await driveFlows(flow, { concurrency: CONCURRENCY, durationSec: ctx.durationSec, ratePerSec: Math.max(1, max.flowsPerSec / 2) });
    const ours = { max, half };
    // T1's flow stops at the code (no token request): its bridge CPU per flow, measured apart.
    progress('login flow: wxbridge, authorize + callback only (T1)');
    const t1Flow = bridgeLoginFlow(base, d.sandbox, d.userIds, { withToken: false });
    const t1Before = await readCost(d.db, redis, bridge);
    const t1 = await driveFlows(t1Flow, { concurrency: CONCURRENCY, durationSec: ctx.durationSec });
    const t1Cost = costPerFlow(t1Before, await readCost(d.db, redis, bridge), t1.completed);
    const ourRss = bridge.peakRssMb();
    await bridge.stop();

    await assertFree(`http://127.0.0.1:${OIDC_PORT}/`);
    const op = spawnPinned(0, ['--import', 'tsx', 'bench/servers/oidc-provider.ts'], { PORT: String(OIDC_PORT) });
    let theirs: { max: FlowResult; half: FlowResult };
    let theirRss: number | undefined;
    try {
      await waitUntilUp(op, `http://127.0.0.1:${OIDC_PORT}/.well-known/openid-configuration`);
      const base = `http://127.0.0.1:${OIDC_PORT}`;
      progress('login flow: node-oidc-provider');
      theirs = await measureFlows(oidcProviderFlow(base), ctx.durationSec);
      theirRss = op.peakRssMb();
    } finally {
      await op.stop();
    }
    const ratio = theirs.max.flowsPerSec > 0 ? ours.max.flowsPerSec / theirs.max.flowsPerSec : 0;
    return {
      before: [
        {
          name: 'node-oidc-provider minimal code flow (login-flow baseline; "req/s" = flows/s)',
          result: asLoad(theirs),
          ...(theirRss !== undefined ? { rssMb: theirRss } : {}),
          note: errorsOf(theirs.max, theirs.half),
        },
      ],
      result: asLoad(ours),
      ...(ourRss !== undefined ? { rssMb: ourRss } : {}),
      custom: {
        'flows/s': ours.max.flowsPerSec,
        '× node-oidc-provider': `${ratio.toFixed(2)} (target ≥ 5)`,
        'flows completed': ours.max.completed,
        'bridge CPU ms/flow (flows/s per core)': `${cost.cpuMs.toFixed(2)} (${Math.round(1000 / cost.cpuMs)})`,
        'T1 flow without the token request: flows/s, bridge CPU ms/flow (flows/s per core; T1 ≥ 300)': `${t1.flowsPerSec}, ${t1Cost.cpuMs.toFixed(2)} (${Math.round(1000 / t1Cost.cpuMs)})`,
        'DB transactions/flow (reads included; T14 ≤ 1 write transaction)': cost.xact.toFixed(2),
        'rows written/flow': cost.writes || 'none',
        'Redis commands/flow': cost.redisCalls.toFixed(1),
        'T1 flow: DB transactions/flow, rows written/flow, Redis commands/flow': `${t1Cost.xact.toFixed(2)}, ${t1Cost.writes || 'none'}, ${t1Cost.redisCalls.toFixed(1)}`,
        'per hop p50/p99 ms at half load (T2: authorize p99 ≤ 10, callback ≤ 50)': hops.summary(),
      },
      note: [FAIRNESS, `wxbridge runs as ${describeRuntime(d.runtime)}.`, errorsOf(ours.max, ours.half, t1)].filter(Boolean).join(' '),
    };
  } finally {
    redis?.disconnect();
    await d.close();
  }
}

/**
 * Peak RSS of a production-mode bridge (ROLE=all, as the demo process runs) after the
 * loads the demo process had (healthz, JWKS, client_credentials, safe-mode pushes) and
 * then login flows on top, beside the demo process's figure.
 */
async function rss(ctx: BenchContext): Promise<ScenarioResult> {
  const d = await deploy({ databaseUrl: ctx.databaseUrl, redisUrl: ctx.redisUrl, database: 'wxb_bench_rss', users: { prefix: 'r', count: 200 } });
  try {
    const bridge = await d.startBridge({ port: PUBLIC_PORT, cpu: 0, role: 'all' });
    const base = bridgeUrl(PUBLIC_PORT);
    const idle = bridge.peakRssMb();
    const idleMem = await memoryOf(base);
    const dur = Math.max(2, Math.round(ctx.durationSec / 2));
    const healthz = await measure({ url: `${base}/healthz`, durationSec: dur }, { halfLoad: false });
    const jwks = await measure({ url: `${base}/.well-known/jwks.json`, durationSec: dur }, { halfLoad: false });
    const token = await measure(
      {
        url: `${base}/oauth2/token`,
        method: 'POST',
        headers: { authorization: basicAuth(BENCH.backend.clientId, BENCH.backend.secret), 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials&scope=notices%3Asend',
        durationSec: dur,
      },
      { halfLoad: false },
    );
    const push = await measurePush(base, { id: 'bench', ...BENCH }, dur);
    const afterSameLoads = bridge.peakRssMb();
    const flows = await driveFlows(bridgeLoginFlow(base, d.sandbox, d.userIds), { concurrency: CONCURRENCY, durationSec: dur });
    const peak = bridge.peakRssMb();
    const endMem = await memoryOf(base);
    const demo = ctx.demoRssMb();
    return {
      ...(peak !== undefined ? { rssMb: peak } : {}),
      custom: {
        'idle MB': idle ?? '?',
        'after healthz+JWKS+token+push MB': afterSameLoads ?? '?',
        'after login flows too MB': peak ?? '?',
        'idle MB (rss/heap used of total/external)': idleMem,
        'end MB (rss/heap used of total/external)': endMem,
        'demo-mode process peak MB': demo ?? '?',
        'target MB': 200,
      },
      note: `Production mode, run as ${describeRuntime(d.runtime)}: BRIDGE_CONFIG, ROLE=all (web and workers, as the demo process), no sandbox, demo merchant or oidc-provider in the process; ${dur} s of each load. Healthz ${healthz.rps} req/s, JWKS ${jwks.rps} req/s, token ${token.rps} req/s (${token.non2xx + token.errors} failed), push ${push ? `${push.rps} req/s (${push.non2xx + push.errors} failed)` : 'n/a'}, login ${flows.flowsPerSec} flows/s (${flows.failed} failed) during it.`,
    };
  } finally {
    await d.close();
  }
}

/** Where the memory is now, from the bridge's own /metrics (prom-client's default metrics): rss/heap used of total/external in MB. */
async function memoryOf(base: string): Promise<string> {
  const text = await fetch(`${base}/metrics`).then((r) => r.text(), () => '');
  const mb = (name: string): string => {
    const m = new RegExp(`^wxbridge_${name} (\\S+)$`, 'm').exec(text);
    return m ? String(Math.round(Number(m[1]) / 1048576)) : '?';
  };
  return `${mb('process_resident_memory_bytes')}/${mb('nodejs_heap_size_used_bytes')} of ${mb('nodejs_heap_size_total_bytes')}/${mb('nodejs_external_memory_bytes')}`;
}

export const productionScenarios: Scenario[] = [
  { id: 'login-flow', name: 'wxbridge login flow: authorize → WeChat → callback → code → token (production mode; "req/s" = flows/s)', run: loginFlow },
  { id: 'rss', name: 'wxbridge peak RSS under load, production mode (sandbox in its own process)', run: rss },
];
