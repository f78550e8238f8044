/**
 * The benchmark scenarios. Each returns null when the bridge does not serve what it
 * measures yet, so the harness reports it as skipped instead of failing.
 *
 * Ids for BENCH_ONLY: healthz, jwks, token, push (the demo-mode bridge), then login-flow,
 * rss, notices, scale (a production-mode deployment of their own: bench/lib/deployment.ts;
 * the bridge that serves the WeChat login listens on port 80). Knobs:
 * BENCH_FLOW_CONCURRENCY (16), BENCH_NOTICES (20000 deliveries), BENCH_NOTICE_RATE (steady
 * enqueue/s; default half the one-worker rate, ≤ 1000), BENCH_SCALE=full (adds 10M bindings),
 * BENCH_SCALE_SIZES=a,b (trial sizes), BENCH_SCALE_FLOW_RATE (5 flows/s), BENCH_CPU_PROF=dir
 * (V8 CPU profiles of the production bridges).
 */
import { measure, type LoadResult } from './lib/load.ts';
import { pushAnatomy } from './lib/push-anatomy.ts';
import { available, measurePush } from './lib/push-sample.ts';
import { noticeScenarios } from './notices.ts';
import { productionScenarios } from './production.ts';
import { scaleScenarios } from './scale.ts';

export interface BenchContext {
  /** The demo-mode bridge that run.ts started (pinned to core 0). */
  baseUrl: string;
  durationSec: number;
  databaseUrl: string;
  redisUrl: string;
  /** Peak RSS of that demo-mode bridge so far (MB). */
  demoRssMb(): number | undefined;
}

/** One line of the results table. */
export interface ResultRow {
  name: string;
  result?: LoadResult;
  custom?: Record<string, string | number>;
  note?: string;
  /** Peak RSS of the process this row measured; run.ts otherwise shows the demo bridge's. */
  rssMb?: number;
}

export interface ScenarioResult extends Omit<ResultRow, 'name'> {
  /** Replaces the scenario's name in the table (e.g. the size of the last cost-growth step). */
  name?: string;
  /** Rows measured by the scenario before its own (e.g. its baseline), shown above it. */
  before?: ResultRow[];
}

export interface Scenario {
  id: string;
  name: string;
  /** Measures the demo-mode bridge run.ts started, so run.ts can report its CPU per request. */
  onDemoBridge?: boolean;
  run(ctx: BenchContext): Promise<ScenarioResult | null>;
}

const CARD_BACKEND = 'Basic ' + Buffer.from('card-backend:demo-card-backend-secret').toString('base64');

export const scenarios: Scenario[] = [
  {
    id: 'healthz',
    onDemoBridge: true,
    name: 'wxbridge GET /healthz (full middleware stack)',
    run: async (ctx) => ({ result: await measure({ url: `${ctx.baseUrl}/healthz`, durationSec: ctx.durationSec }) }),
  },
  {
    id: 'jwks',
    onDemoBridge: true,
    name: 'wxbridge GET /.well-known/jwks.json',
    async run(ctx) {
      const url = `${ctx.baseUrl}/.well-known/jwks.json`;
      if (!(await available(url))) return null;
      return { result: await measure({ url, durationSec: ctx.durationSec }) };
    },
  },
  {
    id: 'token',
    onDemoBridge: true,
    name: 'wxbridge POST /oauth2/token (client_credentials, ES256)',
    async run(ctx) {
      const url = `${ctx.baseUrl}/oauth2/token`;
      const init = {
        method: 'POST' as const,
        headers: { authorization: CARD_BACKEND, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials&scope=notices%3Asend',
      };
      if (!(await available(url, init))) return null;
      return { result: await measure({ url, durationSec: ctx.durationSec, ...init }) };
    },
  },
];

scenarios.push({
  id: 'push',
  onDemoBridge: true,
  name: 'wxbridge POST /wechat/push/demo (safe mode, unique MsgId, dedupe on Redis)',
  async run(ctx) {
    const { DEMO_ACCOUNT } = await import('../src/config/demo.ts');
    const result = await measurePush(ctx.baseUrl, DEMO_ACCOUNT, ctx.durationSec);
    if (!result) return null;
    const a = await pushAnatomy(DEMO_ACCOUNT, ctx.redisUrl);
    return {
      result,
      custom: {
        'in-process CPU µs: verify+decrypt+parse': a.verifyUs.toFixed(1),
        'seal reply': a.replyUs.toFixed(1),
        '3 Redis commands': a.redisUs.toFixed(1),
      },
    };
  },
});

// Production-mode scenarios (config file, sandbox and workers as their own processes): issues 5, 7, 9.
scenarios.push(...productionScenarios, ...noticeScenarios, ...scaleScenarios);
