/**
 * Notice throughput (issue 7): ROLE=worker processes sending to the sandbox process on
 * real PostgreSQL. The queue is filled through the merchant API (`POST /api/v1/notices`
 * with `{segment: 'all'}`: one notice, one delivery per linked user, written in one
 * transaction) only after the workers are up and idle, so the figure is the workers' alone
 * and starts at the first claim. The web process that takes the API calls is on core 1,
 * the measured worker on core 0.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../src/store/db.ts';
import { cpuMsOf } from './lib/cpu.ts';
import { driveFlows } from './lib/flow-driver.ts';
import { deploy, type Deployment } from './lib/deployment.ts';
import type { Proc } from './lib/proc.ts';
import { backendToken, BENCH, bridgeUrl, progress, PUBLIC_PORT } from './lib/stack.ts';
import type { BenchContext, Scenario, ScenarioResult } from './scenarios.ts';

const N = Number(process.env.BENCH_NOTICES ?? 20_000);
/** Linked users; N deliveries are N / USERS notices to all of them (simulated users cost the sandbox ~10 ms each to create). */
const USERS = Math.min(N, 2_000);
const WORKER_PORTS = [3912, 3913];
const DRAIN_TIMEOUT_MS = 300_000;

interface Drain {
  perSec: number;
  /** CPU (user + system) of the measured worker(s) per delivery, from /proc/<pid>/stat. */
  cpuMsPerDelivery: number;
  /** Committed transactions of the bench database per delivery (each worker statement is its own). */
  xactPerDelivery: number;
  /** CPU per delivery of the sandbox process and of the bench database's Postgres backends (the rest of the machine's work). */
  sandboxCpuMs: number;
  pgCpuMs: number;
  total: number;
  seconds: number;
  counts: Record<string, number>;
  rssMb: (number | undefined)[];
}

async function postNotice(web: string, token: string, to: Record<string, string>): Promise<string> {
  const r = await fetch(`${web}/api/v1/notices`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
    body: JSON.stringify({ to, template: BENCH.template.name, data: { merchant: 'Bench shop', amount: '12.34' } }),
  });
  if (r.status !== 202) throw new Error(`POST /api/v1/notices: ${r.status} ${(await r.text()).slice(0, 200)}`);
  return ((await r.json()) as { id: string }).id;
}

/** Waits until no delivery of these notices is queued or being sent; a `sent` template waits only for WeChat's report. */
async function waitDrained(db: Db, noticeIds: string[]): Promise<Record<string, number>> {
  const t0 = Date.now();
  for (;;) {
    const r = await db.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM notice_deliveries WHERE notice_id = ANY($1::uuid[]) GROUP BY status', [noticeIds]);
    const counts = Object.fromEntries(r.rows.map((x) => [x.status, x.n]));
    if (!counts.queued && !counts.sending) return counts;
    if (Date.now() - t0 > DRAIN_TIMEOUT_MS) throw new Error(`deliveries not drained after ${DRAIN_TIMEOUT_MS / 1000} s: ${JSON.stringify(counts)}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

/** CPU ms (utime + stime) a process has used so far; NaN when /proc is not there. */
const cpuMs = (pid: number | undefined): number => cpuMsOf(pid) ?? Number.NaN;

/**
 * Transactions committed in the bench database. Every worker statement is a transaction of
 * its own (no BEGIN), so the difference over a drain counts the worker's statements (plus
 * the ten API inserts and this bench's polling). Read after the workers stopped: a backend
 * reports its counts when it goes idle or exits.
 */
async function xactCommits(db: Db): Promise<number> {
  const r = await db.query<{ n: number }>('SELECT xact_commit::int8 AS n FROM pg_stat_database WHERE datname = current_database()');
  return Number(r.rows[0]!.n);
}

/** Warnings and errors a worker logged (pino JSON at LOG_LEVEL=warn), counted by message: a stall shows here. */
const workerLogs = new Map<string, number>();
function collectLogs(p: Proc): Proc {
  let rest = '';
  const onData = (b: Buffer) => {
    const lines = (rest + b.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      const m = /"msg":"([^"]*)"/.exec(line);
      if (m?.[1]) workerLogs.set(m[1], (workerLogs.get(m[1]) ?? 0) + 1);
    }
  };
  p.child.stdout?.on('data', onData);
  p.child.stderr?.on('data', onData);
  return p;
}

/** CPU ms used so far by each Postgres backend of the bench database, but the bench's own. */
async function backendCpu(db: Db): Promise<Map<number, number>> {
  const r = await db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
  return new Map(r.rows.map((x) => [x.pid, cpuMs(x.pid)] as const).filter(([, ms]) => !Number.isNaN(ms)));
}

/** `workers` idle ROLE=worker processes, then N deliveries in one notice; deliveries/s from the first claim to the last outcome written. */
async function drainWith(d: Deployment, web: string, token: string, cpus: number[]): Promise<Drain> {
  const workers: Proc[] = await Promise.all(cpus.map(async (cpu, i) => collectLogs(await d.startBridge({ port: WORKER_PORTS[i]!, cpu, role: 'worker' }))));
  try {
    const batches = Math.max(1, Math.round(N / USERS));
    progress(`notices: ${batches} × ${USERS} deliveries, ${cpus.length} worker(s)`);
    const ids: string[] = [];
    await d.db.query('SELECT pg_stat_clear_snapshot()');
    const xact0 = await xactCommits(d.db);
    const cpu0 = workers.map((w) => cpuMs(w.child.pid));
    const sandbox0 = cpuMs(d.sandbox.proc.child.pid);
    const pg0 = await backendCpu(d.db);
    for (let i = 0; i < batches; i++) ids.push(await postNotice(web, token, { segment: 'all' }));
    const counts = await waitDrained(d.db, ids);
    const cpu = workers.reduce((a, w, i) => a + cpuMs(w.child.pid) - cpu0[i]!, 0);
    const sandboxCpu = cpuMs(d.sandbox.proc.child.pid) - sandbox0;
    // Backends opened during the drain count whole (they started at zero).
    const pgCpu = [...(await backendCpu(d.db))].reduce((a, [pid, ms]) => a + ms - (pg0.get(pid) ?? 0), 0);
    const t = await d.db.query<{ s: number }>(
      'SELECT extract(epoch FROM max(updated_at) - min(claimed_at))::float8 AS s FROM notice_deliveries WHERE notice_id = ANY($1::uuid[])',
      [ids],
    );
    const seconds = t.rows[0]!.s;
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const rssMb = workers.map((w) => w.peakRssMb());
    for (const w of workers) await w.stop();
    await new Promise((r) => setTimeout(r, 1_000));
    await d.db.query('SELECT pg_stat_clear_snapshot()');
    const xact = (await xactCommits(d.db)) - xact0;
    return {
      perSec: Math.round(total / seconds),
      cpuMsPerDelivery: Math.round((cpu / total) * 1000) / 1000,
      xactPerDelivery: Math.round((xact / total) * 1000) / 1000,
      sandboxCpuMs: Math.round((sandboxCpu / total) * 1000) / 1000,
      pgCpuMs: Math.round((pgCpu / total) * 1000) / 1000,
      total,
      seconds: Math.round(seconds * 100) / 100,
      counts,
      rssMb,
    };
  } finally {
    for (const w of workers) await w.stop();
  }
}

/** One-recipient notices at a steady rate while one worker runs: enqueue → claim and enqueue → WeChat's answer, from the rows' own timestamps. */
async function latencyAt(d: Deployment, web: string, token: string, rate: number, durationSec: number) {
  const worker = collectLogs(await d.startBridge({ port: WORKER_PORTS[0]!, cpu: 0, role: 'worker' }));
  try {
    progress(`notices: steady enqueue at ${rate}/s`);
    const ids: string[] = [];
    let next = 0;
    const load = await driveFlows(
      async () => {
        ids.push(await postNotice(web, token, { account: `acct-${d.userIds[next++ % d.userIds.length]!}` }));
      },
      { concurrency: 64, durationSec, ratePerSec: rate },
    );
    const counts = await waitDrained(d.db, ids);
    // Enqueue = the notice row's created_at (the API's insert). First attempt = the start of
    // the first call to WeChat (first_attempt_at, kept across retries): the target.
    // claimed_at moves with every claim; sent_at/finished_at is when the outcome was written.
    const r = await d.db.query<{ claim50: number; claim99: number; first50: number; first99: number; firstMax: number; sent50: number; sent99: number }>(
      `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY claim) AS claim50, percentile_cont(0.99) WITHIN GROUP (ORDER BY claim) AS claim99,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY first) AS first50, percentile_cont(0.99) WITHIN GROUP (ORDER BY first) AS first99,
              max(first) AS "firstMax",
              percentile_cont(0.5) WITHIN GROUP (ORDER BY sent) AS sent50, percentile_cont(0.99) WITHIN GROUP (ORDER BY sent) AS sent99
         FROM (SELECT extract(epoch FROM d.claimed_at - n.created_at) * 1000 AS claim,
                      extract(epoch FROM d.first_attempt_at - n.created_at) * 1000 AS first,
                      extract(epoch FROM COALESCE(d.sent_at, d.finished_at) - n.created_at) * 1000 AS sent
                 FROM notice_deliveries d JOIN notices n ON n.id = d.notice_id WHERE d.notice_id = ANY($1::uuid[])) x`,
      [ids],
    );
    // Deliveries whose first attempt came over a second late, and how many of those a lease expiry brought back.
    const late = await d.db.query<{ late: number; reaped: number; attempts: number }>(
      `SELECT count(*)::int AS late, count(*) FILTER (WHERE d.ambiguous_since IS NOT NULL OR d.error = 'lease_expired')::int AS reaped,
              COALESCE(max(d.attempts), 0)::int AS attempts
         FROM notice_deliveries d JOIN notices n ON n.id = d.notice_id
        WHERE d.notice_id = ANY($1::uuid[]) AND d.first_attempt_at - n.created_at > interval '1 second'`,
      [ids],
    );
    const p = { ...r.rows[0]!, late: late.rows[0]! };
    return { achieved: Math.round(ids.length / durationSec), apiP99: load.p99, failedPosts: load.failed, counts, ...p, rssMb: worker.peakRssMb() };
  } finally {
    await worker.stop();
  }
}

const fmt = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');

async function notices(ctx: BenchContext): Promise<ScenarioResult> {
  const d = await deploy({ databaseUrl: ctx.databaseUrl, redisUrl: ctx.redisUrl, database: 'wxb_bench_notices', users: { prefix: 'n', count: USERS } });
  try {
    const webUrl = bridgeUrl(PUBLIC_PORT);
    await d.startBridge({ port: PUBLIC_PORT, cpu: 1, role: 'web' });
    const token = await backendToken(webUrl);
    const one = await drainWith(d, webUrl, token, [0]);
    const two = await drainWith(d, webUrl, token, [0, 1]);
    const rate = Number(process.env.BENCH_NOTICE_RATE ?? Math.max(50, Math.min(1000, Math.round(one.perSec / 2))));
    const lat = await latencyAt(d, webUrl, token, rate, ctx.durationSec);
    const ms = (x: number) => Math.round(x);
    return {
      ...(one.rssMb[0] !== undefined ? { rssMb: one.rssMb[0] } : {}),
      custom: {
        'deliveries/s, 1 worker (core 0)': `${one.perSec} (${one.total} in ${one.seconds} s; target ≥ 2000)`,
        'deliveries/s, 2 workers (cores 0+1)': `${two.perSec} (${two.seconds} s; ×${(two.perSec / Math.max(1, one.perSec)).toFixed(2)})`,
        'steady enqueue': `${lat.achieved}/s asked ${rate}/s (API p99 ${lat.apiP99} ms, ${lat.failedPosts} failed)`,
        'enqueue→first attempt p50/p99/max ms': `${ms(lat.first50)}/${ms(lat.first99)}/${ms(lat.firstMax)} (target p99 ≤ 250)`,
        'first attempts > 1 s late (of them back from an expired lease; most attempts)': `${lat.late.late} (${lat.late.reaped}; ${lat.late.attempts})`,
        'enqueue→last claim p50/p99 ms': `${ms(lat.claim50)}/${ms(lat.claim99)}`,
        'enqueue→outcome recorded p50/p99 ms': `${ms(lat.sent50)}/${ms(lat.sent99)}`,
        'worker CPU ms/delivery (1 / 2 workers)': `${one.cpuMsPerDelivery} / ${two.cpuMsPerDelivery}`,
        'DB transactions/delivery (1 / 2 workers)': `${one.xactPerDelivery} / ${two.xactPerDelivery}`,
        'sandbox / Postgres CPU ms/delivery (1 worker)': `${one.sandboxCpuMs} / ${one.pgCpuMs}`,
        'worker RSS MB (1 / 2 workers)': `${one.rssMb[0] ?? '?'} / ${two.rssMb.map((x) => x ?? '?').join('+')}`,
      },
      note:
        `Outcomes: 1 worker ${fmt(one.counts)}; 2 workers ${fmt(two.counts)}; steady ${fmt(lat.counts)}. ` +
        `Worker warnings: ${workerLogs.size ? fmt(Object.fromEntries(workerLogs)) : 'none'}. ` +
        'Template channel (the seeded users have no customer-service window). "Final" for the worker = WeChat answered (sent/failed/unknown); ' +
        'sent → delivered is the TEMPLATESENDJOBFINISH push, measured by the push scenario, and the sandbox has no push URL here. ' +
        'On 2 cores the second worker shares core 1 with the sandbox, the web process and the load generator, and PostgreSQL floats over both.',
    };
  } finally {
    await d.close();
  }
}

export const noticeScenarios: Scenario[] = [{ id: 'notices', name: 'wxbridge notice deliveries to the sandbox, ROLE=worker on real PostgreSQL', run: notices }];
