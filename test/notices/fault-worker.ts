/**
 * A notices worker process for the fault test (`faults.test.ts`): what `ROLE=worker` runs,
 * built from a JSON description in FAULT_WORKER (database schema, Redis URL behind the
 * test's cuttable proxy, the sandbox's URL, config and options). The test SIGKILLs it.
 */
import { pino } from 'pino';
import type { AppConfig } from '../../src/config/index.ts';
import { createCsWindow } from '../../src/inbox/cs-window.ts';
import { createNoticesFeature, type NoticesOptions } from '../../src/notices/index.ts';
import { createPgDb } from '../../src/store/db-pg.ts';
import { createRedisKv } from '../../src/store/kv-redis.ts';
import type { Kv } from '../../src/store/kv.ts';
import { createAccessTokenManager } from '../../src/wechat/access-token.ts';
import { createWeChatApi } from '../../src/wechat/api.ts';

export interface FaultWorkerSpec {
  databaseUrl: string;
  schema: string;
  redisUrl: string;
  wechatUrl: string;
  appSecret: string;
  timeoutMs: number;
  config: Pick<AppConfig, 'merchants' | 'officialAccounts'>;
  options: Partial<NoticesOptions>;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.env.FAULT_WORKER ?? '') as FaultWorkerSpec;
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  // `schema` may carry session settings too (see faults.test.ts: no flush at each commit).
  const db = await createPgDb({ url: spec.databaseUrl, schema: spec.schema, max: 4 });
  let kv: Kv | undefined;
  // Redis may be "down" (the proxy is cut) when this process starts: keep trying.
  while (!kv) kv = await createRedisKv({ url: spec.redisUrl }).catch(() => new Promise<undefined>((r) => setTimeout(() => r(undefined), 100)));
  const appId = spec.config.officialAccounts[0]!.appId;
  const tokens = createAccessTokenManager({ kv, apiBaseUrl: spec.wechatUrl, logger: log, accounts: (id) => (id === appId ? { appSecret: spec.appSecret } : undefined) });
  const wechat = createWeChatApi({ tokens, apiBaseUrl: spec.wechatUrl, logger: log, timeoutMs: spec.timeoutMs });
  const csWindow = createCsWindow({ kv, quotas: () => ({ messageQuota: 5, messageWindowHours: 48, eventQuota: 3, eventWindowSeconds: 60 }) });
  const feature = createNoticesFeature({
    db,
    kv,
    log,
    config: spec.config,
    wechat,
    csWindow,
    requireScope: () => async () => {
      throw new Error('no routes in a worker');
    },
    options: spec.options,
  });
  await feature.startWorkers?.();
  process.stdout.write('ready\n');
}

void main();
