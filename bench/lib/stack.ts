/**
 * A production-shaped deployment for the benchmarks that need one (login flow, notices,
 * cost growth, RSS): a config file (no demo mode, no sandbox in the bridge process), a
 * database of its own on the real PostgreSQL, a Redis database of its own, and the
 * WeChat sandbox as a separate process (`src/sandbox/main.ts`) with WeChat's quotas
 * raised so that they never bind: otherwise the bench would measure the sandbox's rules.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { assertFree, spawnPinned, waitUntilUp, type Proc } from './proc.ts';

/** The official account and merchant of the bench config; nothing here protects anything real. */
export const BENCH = {
  appId: 'wxbench00000000001',
  appSecret: 'bench-app-secret-0123456789abcdef',
  token: 'benchToken2026',
  encodingAesKey: 'Bx2bR7kLm9QpZ3vN8sT1uY4cF6hJ0dG5aE2iK7oP3qA',
  originalId: 'gh_bench0000001',
  merchant: 'shop',
  h5: { clientId: 'shop-h5', secret: 'bench-shop-h5-secret-0001', redirectUri: 'https://shop.bench.example/auth/callback' },
  backend: { clientId: 'shop-backend', secret: 'bench-shop-backend-secret-0001' },
  template: { name: 'payment_posted', id: 'benchTemplate0000000000000000000000000000001', fields: { thing1: 'merchant', amount2: 'amount' } },
  secretKey: 'b3'.repeat(32),
} as const;

/** A timestamped progress line on stderr (the long scenarios take minutes). */
export function progress(msg: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

/** Redis database index of the production-shaped bridge: flushed at start, so no token or state of an earlier run leaks in. */
const BENCH_REDIS_DB = 7;

export function benchRedisUrl(redisUrl: string): string {
  const u = new URL(redisUrl);
  u.pathname = `/${BENCH_REDIS_DB}`;
  return u.toString();
}

export async function flushBenchRedis(redisUrl: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const r = new Redis(benchRedisUrl(redisUrl), { lazyConnect: true, maxRetriesPerRequest: 1 });
  await r.connect();
  await r.flushdb();
  r.disconnect();
}

const withDatabase = (url: string, name: string): string => {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
};

/** A fresh database on the server of `databaseUrl` (dropped first if a killed run left it). */
export async function createDatabase(databaseUrl: string, name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
  const c = new pg.Client({ connectionString: withDatabase(databaseUrl, 'postgres') });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name}`);
  } finally {
    await c.end();
  }
  return withDatabase(databaseUrl, name);
}

export async function dropDatabase(databaseUrl: string, name: string): Promise<void> {
  const c = new pg.Client({ connectionString: withDatabase(databaseUrl, 'postgres') });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

export interface SandboxProc {
  proc: Proc;
  url: string;
  control<T = unknown>(path: string, body?: unknown, method?: string): Promise<T>;
  stop(): Promise<void>;
}

/** The standalone sandbox, pinned, with the bench account registered and WeChat's quotas out of the way. */
export async function startSandbox(opts: { port: number; cpu: number; pushUrl?: string }): Promise<SandboxProc> {
  await assertFree(`http://127.0.0.1:${opts.port}/`);
  const proc = spawnPinned(opts.cpu, ['--import', 'tsx', 'src/sandbox/main.ts'], { SANDBOX_PORT: String(opts.port) });
  const url = `http://127.0.0.1:${opts.port}`;
  await waitUntilUp(proc, `${url}/control/apps`);
  const control = async <T>(path: string, body?: unknown, method = body === undefined ? 'GET' : 'POST'): Promise<T> => {
    const r = await fetch(`${url}/control${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await r.json()) as T;
    if (r.status >= 300) throw new Error(`sandbox ${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
    return json;
  };
  const big = 1_000_000_000;
  await control('/limits', { templateDailyLimit: big, customSendDailyLimit: big, stableTokenDailyLimit: big, tokenDailyLimit: big, logCap: 1000 }, 'PATCH');
  await control('/apps', {
    appId: BENCH.appId,
    appSecret: BENCH.appSecret,
    token: BENCH.token,
    encodingAesKey: BENCH.encodingAesKey,
    mode: 'safe',
    originalId: BENCH.originalId,
    name: 'Bench',
    redirectDomains: ['127.0.0.1'],
    allowPortsInRedirect: true,
    templates: { [BENCH.template.id]: Object.keys(BENCH.template.fields) },
    ...(opts.pushUrl ? { pushUrl: opts.pushUrl } : {}),
  });
  return { proc, url, control, stop: () => proc.stop() };
}

/** Simulated WeChat users `${prefix}1…n` following the bench account; returns their user ids. */
export async function createSandboxUsers(sb: SandboxProc, prefix: string, n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
  for (let i = 0; i < ids.length; i += 32) {
    await Promise.all(ids.slice(i, i + 32).map((userId) => sb.control('/users', { userId, followsApps: [BENCH.appId] })));
  }
  return ids;
}

/** The bench config file: one official account on the sandbox, one merchant with an H5 and a backend client. */
export function writeBenchConfig(): string {
  const dir = join(tmpdir(), `wxb-bench-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'wxbridge.json');
  const config = {
    // The merchants' backends here listen on loopback, which the outbound policy refuses by default.
    outbound: { allowPrivateNetworks: true },
    officialAccounts: [{ id: 'bench', appId: BENCH.appId, appSecret: BENCH.appSecret, token: BENCH.token, encodingAesKey: BENCH.encodingAesKey, originalId: BENCH.originalId }],
    merchants: [
      {
        id: BENCH.merchant,
        name: 'Bench shop',
        officialAccount: 'bench',
        profile: 'base',
        binding: { maxAccountsPerUser: 5, exclusive: true },
        linking: [{ type: 'binding-code' }],
        clients: [
          { clientId: BENCH.h5.clientId, clientSecret: BENCH.h5.secret, redirectUris: [BENCH.h5.redirectUri], grantTypes: ['authorization_code'], scopes: ['openid'] },
          { clientId: BENCH.backend.clientId, clientSecret: BENCH.backend.secret, grantTypes: ['client_credentials'], scopes: ['notices:send', 'bindings:read'] },
        ],
        notices: { channel: 'auto', templates: { [BENCH.template.name]: { templateId: BENCH.template.id, fields: BENCH.template.fields } } },
      },
    ],
  };
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/**
 * The port of a bridge that serves the WeChat login. WeChat refuses a port in redirect_uri
 * (wechat-protocol.md §1.2), and a production-mode bridge obeys that even against the
 * sandbox, so its PUBLIC_URL has none: it listens on 80 (the bench runs as root here), as a
 * deployment does behind its proxy.
 */
export const PUBLIC_PORT = 80;

export const bridgeUrl = (port: number): string => (port === PUBLIC_PORT ? 'http://127.0.0.1' : `http://127.0.0.1:${port}`);

export interface BridgeSpec {
  port: number;
  cpu: number;
  role: 'web' | 'worker' | 'all';
  databaseUrl: string;
  redisUrl: string;
  sandboxUrl: string;
  configFile: string;
}

export const basicAuth = (id: string, secret: string): string => 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64');

/** A merchant-API Bearer token for the bench backend client. */
export async function backendToken(bridgeUrl: string): Promise<string> {
  const r = await fetch(`${bridgeUrl}/oauth2/token`, {
    method: 'POST',
    headers: { authorization: basicAuth(BENCH.backend.clientId, BENCH.backend.secret), 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials&scope=notices%3Asend%20bindings%3Aread',
  });
  if (r.status !== 200) throw new Error(`client_credentials: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { access_token: string }).access_token;
}
