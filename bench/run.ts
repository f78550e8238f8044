/**
 * `npm run bench`: every benchmark on this machine, each beside a baseline measured in
 * the same run (bare Koa hello-world), against real PostgreSQL and Redis. The bridge
 * runs pinned to core 0; this process (the load generator) to core 1. Results are
 * appended to docs/BENCHMARKS.md with the commit, Node version and CPU model.
 *
 * BENCH_DURATION (s, default 10) sets each measured run; BENCH_ONLY=a,b picks scenarios
 * (the bare-Koa baseline always runs); BENCH_NO_APPEND=1 prints the table without
 * appending it to docs/BENCHMARKS.md (exploratory runs); BENCH_BASE_PORT (3901) moves the
 * baseline and demo-bridge ports; BENCH_PIN_SERVICES=0 leaves local PostgreSQL and Redis
 * unpinned (by default they are pinned to core 1 for the run, SECURITY.md E).
 */
import { execSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { cpuMsOf, cpuUsPerRequest } from './lib/cpu.ts';
import { measure, type LoadResult } from './lib/load.ts';
import { assertFree, benchRuntime, describeRuntime, entryArgs, pinLocalServices, spawnPinned, waitUntilUp, type Proc } from './lib/proc.ts';
import { scenarios, type BenchContext } from './scenarios.ts';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ONLY = process.env.BENCH_ONLY?.split(',').filter(Boolean);
const OUT = 'docs/BENCHMARKS.md';
/** Bare Koa listens here and the demo-mode bridge on the next port (BENCH_BASE_PORT; both must be free). */
const BASE_PORT = Number(process.env.BENCH_BASE_PORT ?? 3901);

interface Row {
  name: string;
  result?: LoadResult;
  custom?: Record<string, string | number>;
  rssMb?: number;
  ratio?: number;
  /** CPU µs per request of the process under test (bare Koa, or the demo-mode bridge). */
  cpuUs?: number;
  note?: string;
}

async function startBridge(port: number): Promise<Proc> {
  // The same runtime as the production-mode bridges (the compiled build with the production
  // memory settings, unless BENCH_RUNTIME=tsx), in demo mode.
  const runtime = benchRuntime();
  const proc = spawnPinned(0, entryArgs(runtime, 'src/main.ts'), {
    ...runtime.env,
    PORT: String(port),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    DATABASE_URL,
    REDIS_URL,
    LOG_LEVEL: 'warn',
    DATA_DIR: '/tmp/wxb-bench',
    BRIDGE_SECRET_KEY: 'be'.repeat(32),
  });
  await waitUntilUp(proc, `http://127.0.0.1:${port}/readyz`);
  return proc;
}

async function main(): Promise<void> {
  const commit = execSync('git rev-parse --short HEAD').toString().trim();
  const cpu = cpus()[0]?.model ?? 'unknown';
  console.log(`[bench] commit ${commit}, node ${process.version}, ${cpu}, ${DURATION}s runs`);

  // Before anything starts: the services on core 1, beside the load generator (SECURITY.md E).
  const services = pinLocalServices(1);
  process.on('exit', () => services.restore());
  const baselinePort = BASE_PORT;
  await assertFree(`http://127.0.0.1:${baselinePort}/`);
  await assertFree(`http://127.0.0.1:${baselinePort + 1}/`);
  const bare = spawnPinned(0, ['--import', 'tsx', 'bench/servers/bare-koa.ts'], { PORT: String(baselinePort) });
  await waitUntilUp(bare, `http://127.0.0.1:${baselinePort}/`);
  const bareCpu0 = cpuMsOf(bare.child.pid);
  const baseline = await measure({ url: `http://127.0.0.1:${baselinePort}/`, durationSec: DURATION });
  const bareCpuUs = cpuUsPerRequest(bareCpu0, cpuMsOf(bare.child.pid), baseline.requests ?? 0);
  const rows: Row[] = [{ name: 'bare Koa hello-world (baseline)', result: baseline, rssMb: bare.peakRssMb(), ratio: 1, ...(bareCpuUs !== undefined ? { cpuUs: bareCpuUs } : {}) }];
  await bare.stop();
  console.log(`[bench] baseline ${baseline.rps} req/s`);

  const port = baselinePort + 1;
  const bridge = await startBridge(port);
  const ctx: BenchContext = { baseUrl: `http://127.0.0.1:${port}`, durationSec: DURATION, databaseUrl: DATABASE_URL, redisUrl: REDIS_URL, demoRssMb: () => bridge.peakRssMb() };
  for (const s of scenarios) {
    if (ONLY && !ONLY.includes(s.id)) continue;
    try {
      const cpu0 = cpuMsOf(bridge.child.pid);
      const r = await s.run(ctx);
      const cpuUs = s.onDemoBridge && r?.result ? cpuUsPerRequest(cpu0, cpuMsOf(bridge.child.pid), r.result.requests ?? 0) : undefined;
      if (!r) {
        rows.push({ name: s.name, note: 'skipped: endpoint not available' });
        continue;
      }
      const { before = [], ...own } = r;
      for (const b of [...before, { name: s.name, ...own }]) {
        const row: Row = { ...b, rssMb: b.rssMb ?? bridge.peakRssMb(), ...(before.includes(b) || cpuUs === undefined ? {} : { cpuUs }) };
        if (b.result) row.ratio = b.result.rps / baseline.rps;
        rows.push(row);
      }
      console.log(`[bench] ${s.name}: ${r.result ? `${r.result.rps} req/s` : JSON.stringify(r.custom)}`);
    } catch (err) {
      rows.push({ name: s.name, note: `failed: ${(err as Error).message}` });
      console.error(`[bench] ${s.name} failed`, err);
    }
  }
  await bridge.stop();
  services.restore();
  report(rows, { commit, cpu, servicesPinned: services.pinned });
}

function report(rows: Row[], meta: { commit: string; cpu: string; servicesPinned: string[] }): void {
  const services = meta.servicesPinned.length ? `local ${meta.servicesPinned.join(' and ')} pinned to core 1 too` : 'PostgreSQL and Redis local, unpinned';
  const lines = [
    '',
    `## ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC — commit ${meta.commit}`,
    '',
    `Node ${process.version}; ${meta.cpu}; ${cpus().length} cores; runs of ${DURATION} s after a warm-up; bridge pinned to core 0, load generator to core 1; ${services}; bridges run as ${describeRuntime(benchRuntime())}.`,
    '',
    '| scenario | req/s | × bare Koa | CPU µs/req | p50 ms | p99 ms | p99 at half load ms | non-2xx | peak RSS MB | other |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...rows.map((r) =>
      [
        r.name,
        r.result?.rps ?? '',
        r.ratio !== undefined ? r.ratio.toFixed(2) : '',
        r.cpuUs ?? '',
        r.result?.p50 ?? '',
        r.result?.p99 ?? '',
        r.result?.p99AtHalf ?? '',
        r.result ? r.result.non2xx + r.result.errors : '',
        r.rssMb ?? '',
        [r.note, r.custom ? Object.entries(r.custom).map(([k, v]) => `${k}: ${v}`).join('; ') : ''].filter(Boolean).join(' '),
      ].join(' | ').replace(/^/, '| ').concat(' |'),
    ),
    '',
  ];
  if (process.env.BENCH_NO_APPEND === '1') {
    console.log(lines.join('\n'));
    return;
  }
  if (!existsSync(OUT)) writeFileSync(OUT, '# Benchmarks\n\nAppended by `npm run bench`. Every figure is from that command on the machine named in its section.\n');
  appendFileSync(OUT, lines.join('\n'));
  console.log(readFileSync(OUT, 'utf8').split('\n').slice(-rows.length - 3).join('\n'));
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
