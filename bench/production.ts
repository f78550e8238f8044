/**
 * Scenarios against a production-mode bridge (config file, sandbox as its own process):
 * the merchant login flow beside node-oidc-provider's minimal code flow (issue 5), and
 * peak RSS under load beside the demo-mode process (issue 9).
 */
import { driveFlows, type FlowResult } from './lib/flow-driver.ts';
import { deploy } from './lib/deployment.ts';
import { measure, type LoadResult } from './lib/load.ts';
import { assertFree, describeRuntime, spawnPinned, waitUntilUp } from './lib/proc.ts';
import { measurePush } from './lib/push-sample.ts';
import { BENCH, basicAuth, bridgeUrl, progress, PUBLIC_PORT } from './lib/stack.ts';
import { bridgeLoginFlow } from './login-flow.ts';
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
  try {
    const bridge = await d.startBridge({ port: PUBLIC_PORT, cpu: 0, role: 'web' });
    progress('login flow: wxbridge');
    const ours = await measureFlows(bridgeLoginFlow(bridgeUrl(PUBLIC_PORT), d.sandbox, d.userIds), ctx.durationSec);
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
      custom: { 'flows/s': ours.max.flowsPerSec, '× node-oidc-provider': `${ratio.toFixed(2)} (target ≥ 5)`, 'flows completed': ours.max.completed },
      note: [FAIRNESS, `wxbridge runs as ${describeRuntime(d.runtime)}.`, errorsOf(ours.max, ours.half)].filter(Boolean).join(' '),
    };
  } finally {
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
