/**
 * Three wxbridge instances behind one round-robin port, for test/multi/three-instances.test.ts:
 * one config file (production mode, a binding-code merchant with an H5 and a backend client),
 * one sandbox as WeChat at /sandbox of the shared URL, and the stores shared as production
 * shares them — a pool and a Redis client per instance on one schema and key prefix with
 * DATABASE_URL / REDIS_URL; embedded, one PGlite and one Kv for the three in-process apps.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSandbox, type Sandbox } from '../../src/sandbox/sandbox.ts';
import { createPgDb } from '../../src/store/db-pg.ts';
import type { Db } from '../../src/store/db.ts';
import { createMemoryKv } from '../../src/store/kv-memory.ts';
import type { Kv } from '../../src/store/kv.ts';
import { freePort, startTestApp, TEST_SECRET_KEY, type TestApp } from '../helpers/app.ts';
import { createSchemaDb, DATABASE_URL, dbFactories, primaryDb, REDIS_URL } from '../helpers/stores.ts';
import { FIELDS, listen, TEMPLATE_ID } from '../notices/world.ts';
import { startRoundRobin, type RoundRobin } from './round-robin.ts';

export const APP_ID = `wx${randomBytes(8).toString('hex')}`;
export const APP_SECRET = randomBytes(16).toString('hex');
export const TOKEN = 'multiToken2024';
export const ORIGINAL_ID = `gh_${randomBytes(6).toString('hex')}`;
export const H5 = { id: 'card-h5', secret: 'multi-h5-secret-0001', redirect: 'https://h5.card.example/cb' };
export const BACKEND = { id: 'card-backend', secret: 'multi-backend-secret-0001' };

export interface Cluster {
  sandbox: Sandbox;
  proxy: RoundRobin;
  apps: TestApp[];
  /** The database the three share (for checks), and what they run on. */
  db: Db;
  mode: string;
  close(): Promise<void>;
}

const shared: { db?: Db; dbs: Db[]; kvs: Kv[]; mode: string } = { dbs: [], kvs: [], mode: '' };

function writeConfig(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wxb-multi-'));
  const file = join(dir, 'wxbridge.json');
  writeFileSync(
    file,
    JSON.stringify({
      // The merchants' backends here listen on loopback, which the outbound policy refuses by default.
      outbound: { allowPrivateNetworks: true },
      officialAccounts: [{ id: 'oa', appId: APP_ID, appSecret: APP_SECRET, token: TOKEN, originalId: ORIGINAL_ID }],
      merchants: [
        {
          id: 'card',
          name: 'Card',
          officialAccount: 'oa',
          profile: 'base',
          binding: { maxAccountsPerUser: 5, exclusive: true },
          linking: [{ type: 'binding-code' }],
          clients: [
            { clientId: H5.id, clientSecret: H5.secret, redirectUris: [H5.redirect], grantTypes: ['authorization_code'], scopes: ['openid'] },
            { clientId: BACKEND.id, clientSecret: BACKEND.secret, grantTypes: ['client_credentials'], scopes: ['notices:send', 'binding-codes:write', 'bindings:read'] },
          ],
          notices: { channel: 'template', templates: { payment_posted: { templateId: TEMPLATE_ID, fields: FIELDS } } },
        },
      ],
    }),
  );
  return file;
}

/** One store per instance as production has it: its own pool / client, the same data. */
async function storesFor(i: number): Promise<{ db: Db; kv: Kv }> {
  if (DATABASE_URL && REDIS_URL) {
    if (i === 0) {
      shared.db = await createSchemaDb(DATABASE_URL);
      shared.mode = 'PostgreSQL (a pool each, one schema) + Redis (a client each, one prefix)';
    }
    const schema = (await shared.db!.query<{ s: string }>('SELECT current_schema() AS s')).rows[0]!.s;
    const db = i === 0 ? shared.db! : await createPgDb({ url: DATABASE_URL, schema, max: 5 });
    const { createRedisKv } = await import('../../src/store/kv-redis.ts');
    const kv = await createRedisKv({ url: REDIS_URL, keyPrefix: `m${schema}:` });
    shared.dbs.push(db);
    shared.kvs.push(kv);
    return { db, kv };
  }
  // Embedded: PGlite runs inside this process, so the three apps share it (and one Kv).
  if (i === 0) {
    shared.db = await dbFactories[0]!.create();
    shared.kvs.push(createMemoryKv());
    shared.mode = 'one PGlite + one in-process Kv shared by three in-process apps';
  }
  return { db: shared.db!, kv: shared.kvs[0]! };
}

/** The sandbox, the proxy in front, and three instances started one after another. */
export async function startCluster(): Promise<Cluster> {
  const apps: TestApp[] = [];
  // One WeChat for all three, at /sandbox of the shared URL (as in demo mode, where a port in
  // redirect URIs is allowed because WeChat is local).
  const sandbox = createSandbox({ basePath: '/sandbox', limits: { templateFinishDelayMs: 0 }, pushTimeoutMs: 5_000, idSalt: randomBytes(4).toString('hex') });
  const wx = await listen(sandbox.app.callback());
  const port = await freePort();
  const proxy = await startRoundRobin(
    port,
    () => apps.map((a) => Number(new URL(a.url).port)),
    { prefix: '/sandbox', port: Number(new URL(wx.url).port) },
  );
  sandbox.registerApp({
    appId: APP_ID,
    appSecret: APP_SECRET,
    token: TOKEN,
    mode: 'plain',
    originalId: ORIGINAL_ID,
    pushUrl: `${proxy.url}/wechat/push/oa`,
    redirectDomains: ['localhost'],
    allowPortsInRedirect: true,
    templates: { [TEMPLATE_ID]: Object.keys(FIELDS) },
  });
  const config = writeConfig();
  // One after another: the first applies the migrations, the others find them applied.
  for (let i = 0; i < 3; i++) {
    const { db, kv } = await storesFor(i);
    apps.push(
      await startTestApp({
        env: {
          PUBLIC_URL: proxy.url,
          BRIDGE_CONFIG: config,
          BRIDGE_SECRET_KEY: TEST_SECRET_KEY,
          // Each instance would mount a sandbox of its own at /sandbox; the proxy sends that
          // path to the shared one instead, so theirs are never reached.
          SANDBOX: '1',
          WECHAT_OAUTH_BASE_URL: `${proxy.url}/sandbox`,
          WECHAT_API_BASE_URL: `${proxy.url}/sandbox`,
        },
        overrides: { db, kv },
      }),
    );
  }
  return {
    sandbox,
    proxy,
    apps,
    db: shared.db!,
    mode: shared.mode,
    async close() {
      for (const a of apps) await a.stop().catch(() => undefined);
      await proxy.close();
      await wx.close();
      await sandbox.close();
      for (const kv of shared.kvs) await kv.close().catch(() => undefined);
      for (const db of shared.dbs.slice(1)) await db.close().catch(() => undefined);
      if (shared.db) await (DATABASE_URL && REDIS_URL ? primaryDb.dispose(shared.db) : shared.db.close());
    },
  };
}

