/**
 * Starts the real app in-process on a free port, against real Postgres/Redis when the
 * run has them (each app its own schema) and the embedded stand-ins otherwise.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { demoFileConfig } from '../../src/config/demo.ts';
import { loadConfig, type AppConfig } from '../../src/config/index.ts';
import { start, type Running } from '../../src/main.ts';
import type { DepsOverrides } from '../../src/deps.ts';
import { createRedisKv } from '../../src/store/kv-redis.ts';
import { createSchemaDb, DATABASE_URL } from './stores.ts';

export const TEST_SECRET_KEY = '0f'.repeat(32);

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
    s.once('error', reject);
  });
}

export interface TestApp extends Running {
  config: AppConfig;
  baseUrl: string;
}

export async function startTestApp(opts: { env?: Record<string, string | undefined>; overrides?: DepsOverrides; useRealStores?: boolean } = {}): Promise<TestApp> {
  const port = await freePort();
  const useReal = opts.useRealStores ?? true;
  const env: NodeJS.ProcessEnv = {
    PORT: String(port),
    PUBLIC_URL: `http://localhost:${port}`,
    DATA_DIR: mkdtempSync(join(tmpdir(), 'wxb-')),
    BRIDGE_SECRET_KEY: TEST_SECRET_KEY,
    LOG_LEVEL: 'silent',
    ...(useReal && process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
    ...opts.env,
  };
  const config = loadConfig({ env });
  const overrides: DepsOverrides = { log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), inMemoryDb: true, ...opts.overrides };
  if (useReal && DATABASE_URL && !overrides.db) overrides.db = await createSchemaDb(DATABASE_URL);
  // Every app gets its own Redis key prefix: the demo config gives all test apps the same
  // appId, and a token cached by one app's sandbox must not reach another's.
  if (env.REDIS_URL && !overrides.kv) overrides.kv = await createRedisKv({ url: env.REDIS_URL, keyPrefix: `t${randomBytes(5).toString('hex')}:` });
  const running = await start(config, overrides);
  const ownDb = overrides.db && !opts.overrides?.db ? overrides.db : undefined;
  const ownKv = overrides.kv && !opts.overrides?.kv ? overrides.kv : undefined;
  const stop = running.stop;
  return {
    ...running,
    config,
    // The caller's PUBLIC_URL when it set one (with its PORT), else this app's own.
    baseUrl: String(env.PUBLIC_URL),
    async stop() {
      await stop();
      await ownDb?.close();
      await ownKv?.close();
    },
  };
}

/**
 * The demo world (its official account, merchant and demo bank) as a config file, so a test
 * runs it as a production deployment (BRIDGE_CONFIG set): `extra` replaces top-level sections.
 */
export function demoConfigFile(publicUrl: string, extra: Record<string, unknown>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'wxb-config-')), 'bridge.json');
  writeFileSync(file, JSON.stringify({ ...(demoFileConfig(publicUrl) as object), ...extra }));
  return file;
}
