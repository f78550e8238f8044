/**
 * One production-shaped deployment for a scenario: its own database (migrated, seeded
 * with linked users), a flushed Redis database, the sandbox process on core 1 with those
 * users, and bridges started on demand, run as a production user runs them (the compiled
 * build with the production settings of `PRODUCTION_RUNTIME`, or BENCH_RUNTIME=tsx).
 * `close()` stops every process and drops the database, also when the scenario failed
 * half-way.
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Db } from '../../src/store/db.ts';
import { assertFree, benchRuntime, entryArgs, spawnPinned, waitUntilUp, type Proc, type Runtime } from './proc.ts';
import { openMigratedDb, seedLinkedUsers } from './seed.ts';
import { BENCH, benchRedisUrl, bridgeUrl, createDatabase, createSandboxUsers, dropDatabase, flushBenchRedis, progress, startSandbox, writeBenchConfig, type BridgeSpec, type SandboxProc } from './stack.ts';

export interface DeploymentSpec {
  databaseUrl: string;
  redisUrl: string;
  /** Database name (created fresh, dropped at close). */
  database: string;
  /** Linked users to create in the sandbox and seed in the database (user ids `${prefix}1…n`). */
  users: { prefix: string; count: number };
  sandboxPort?: number;
  /** The sandbox pushes (TEMPLATESENDJOBFINISH, events) here when set. */
  pushUrl?: string;
}

export interface Deployment {
  db: Db;
  dbUrl: string;
  sandbox: SandboxProc;
  userIds: string[];
  /** How the bridges run (for the scenario's note). */
  runtime: Runtime;
  startBridge(s: Pick<BridgeSpec, 'port' | 'cpu' | 'role'>): Promise<Proc>;
  close(): Promise<void>;
}

export async function deploy(spec: DeploymentSpec): Promise<Deployment> {
  const procs: Proc[] = [];
  let db: Db | undefined;
  let sandbox: SandboxProc | undefined;
  let configFile: string | undefined;
  const close = async () => {
    for (const p of procs.reverse()) await p.stop();
    await sandbox?.stop();
    await db?.close();
    await dropDatabase(spec.databaseUrl, spec.database);
    if (configFile) rmSync(dirname(configFile), { recursive: true, force: true });
  };
  try {
    progress(`${spec.database}: database, sandbox, ${spec.users.count} linked users`);
    const dbUrl = await createDatabase(spec.databaseUrl, spec.database);
    db = await openMigratedDb(dbUrl);
    await flushBenchRedis(spec.redisUrl);
    sandbox = await startSandbox({ port: spec.sandboxPort ?? 3910, cpu: 1, ...(spec.pushUrl ? { pushUrl: spec.pushUrl } : {}) });
    const userIds = await createSandboxUsers(sandbox, spec.users.prefix, spec.users.count);
    await seedLinkedUsers(db, userIds);
    configFile = writeBenchConfig();
    const file = configFile;
    const sb = sandbox;
    const runtime = benchRuntime();
    return {
      db,
      dbUrl,
      sandbox: sb,
      userIds,
      runtime,
      async startBridge(s) {
        progress(`${spec.database}: bridge ROLE=${s.role} on core ${s.cpu} (${runtime.kind})`);
        const p = await startProductionBridge(runtime, { ...s, databaseUrl: dbUrl, redisUrl: spec.redisUrl, sandboxUrl: sb.url, configFile: file });
        procs.push(p);
        return p;
      },
      close,
    };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

/** A production-mode bridge (BRIDGE_CONFIG set: no demo merchant, no sandbox in-process). */
async function startProductionBridge(runtime: Runtime, s: BridgeSpec): Promise<Proc> {
  const publicUrl = bridgeUrl(s.port);
  await assertFree(`${publicUrl}/`);
  // BENCH_CPU_PROF=dir: every bridge writes a V8 CPU profile there when it stops (open in Chrome DevTools).
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const proc = spawnPinned(s.cpu, [...prof, ...entryArgs(runtime, 'src/main.ts')], {
    ...runtime.env,
    NODE_ENV: 'production',
    PORT: String(s.port),
    PUBLIC_URL: publicUrl,
    ROLE: s.role,
    BRIDGE_CONFIG: s.configFile,
    BRIDGE_SECRET_KEY: BENCH.secretKey,
    DATABASE_URL: s.databaseUrl,
    REDIS_URL: benchRedisUrl(s.redisUrl),
    WECHAT_OAUTH_BASE_URL: s.sandboxUrl,
    WECHAT_API_BASE_URL: s.sandboxUrl,
    LOG_LEVEL: 'warn',
    DATA_DIR: join(tmpdir(), `wxb-bench-${process.pid}`),
  });
  await waitUntilUp(proc, `${publicUrl}/readyz`);
  return proc;
}
