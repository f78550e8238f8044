/**
 * One production-shaped deployment for a scenario: its own database (migrated, seeded
 * with linked users), a flushed Redis database, the sandbox process on core 1 with those
 * users, and bridges started on demand. `close()` stops every process and drops the
 * database, also when the scenario failed half-way.
 */
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Db } from '../../src/store/db.ts';
import type { Proc } from './proc.ts';
import { openMigratedDb, seedLinkedUsers } from './seed.ts';
import { createDatabase, createSandboxUsers, dropDatabase, flushBenchRedis, progress, startProductionBridge, startSandbox, writeBenchConfig, type BridgeSpec, type SandboxProc } from './stack.ts';

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
    return {
      db,
      dbUrl,
      sandbox: sb,
      userIds,
      async startBridge(s) {
        progress(`${spec.database}: bridge ROLE=${s.role} on core ${s.cpu}`);
        const p = await startProductionBridge({ ...s, databaseUrl: dbUrl, redisUrl: spec.redisUrl, sandboxUrl: sb.url, configFile: file });
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
