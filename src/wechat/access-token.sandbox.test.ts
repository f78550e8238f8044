/**
 * The access-token owner against the sandbox over real HTTP (wechat-protocol.md §2,
 * SECURITY.md D3), on every Kv adapter: in-process, and Redis when REDIS_URL is set.
 * Each test registers its own appId, so runs never share keys.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../sandbox/sandbox.ts';
import { createMemoryKv } from '../store/kv-memory.ts';
import { createRedisKv } from '../store/kv-redis.ts';
import type { Kv } from '../store/kv.ts';
import { createAccessTokenManager } from './access-token.ts';
import { createWeChatApi } from './api.ts';

const kvFactories: [string, () => Promise<Kv>][] = [
  ['memory Kv', async () => createMemoryKv()],
  ...(process.env.REDIS_URL ? [['Redis Kv', () => createRedisKv({ url: process.env.REDIS_URL as string })] as [string, () => Promise<Kv>]] : []),
];

let sandbox: Sandbox;
let server: Server;
let base: string;
let offset = 0;
const now = (): number => Date.now() + offset;

beforeAll(async () => {
  sandbox = createSandbox({ now });
  server = createServer(sandbox.app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await sandbox.close();
  await new Promise((resolve) => server.close(resolve));
});

function newApp() {
  const appId = `wx${randomBytes(8).toString('hex')}`;
  const appSecret = randomBytes(16).toString('hex');
  sandbox.registerApp({ appId, appSecret, token: 'bridgeToken2024', mode: 'plain', originalId: 'gh_test', redirectDomains: ['b.example'] });
  return { appId, appSecret };
}

const callsTo = (path: string, appId: string) => sandbox.calls(path).filter((c) => c.appId === appId);

describe.each(kvFactories)('access token owner over %s', (_name, makeKv) => {
  let kv: Kv;
  beforeAll(async () => {
    kv = await makeKv();
  });
  afterAll(async () => {
    await kv.close();
  });

  const managers = (n: number, appId: string, appSecret: string, method: 'stable' | 'classic' = 'stable') =>
    Array.from({ length: n }, () =>
      createAccessTokenManager({
        kv,
        apiBaseUrl: base,
        now,
        logger: pino({ level: 'silent' }),
        accounts: (id) => (id === appId ? { appSecret, method } : undefined),
      }),
    );

  it('When 3 instances sharing one Kv get 50 concurrent callers each, then stable_token is fetched once', async () => {
    const { appId, appSecret } = newApp();
    const tokens = await Promise.all(managers(3, appId, appSecret).flatMap((m) => Array.from({ length: 50 }, () => m.get(appId))));
    expect(new Set(tokens).size).toBe(1);
    expect(callsTo('/cgi-bin/stable_token', appId)).toHaveLength(1);
  });

  it('When the classic method is used by 3 instances × 50 callers, then cgi-bin/token is fetched once and the token works', async () => {
    const { appId, appSecret } = newApp();
    const ms = managers(3, appId, appSecret, 'classic');
    const tokens = await Promise.all(ms.flatMap((m) => Array.from({ length: 50 }, () => m.get(appId))));
    expect(new Set(tokens).size).toBe(1);
    expect(callsTo('/cgi-bin/token', appId)).toHaveLength(1);
    const user = sandbox.createUser({ followsApps: [appId] });
    const api = createWeChatApi({ tokens: ms[0]!, apiBaseUrl: base, logger: pino({ level: 'silent' }) });
    expect(await api.userInfo(appId, sandbox.openid(appId, user.userId))).toMatchObject({ subscribed: true });
  });

  it('When the token nears expiry, then exactly one instance renews it ahead of the 300 s rotation and the old one keeps working', async () => {
    const { appId, appSecret } = newApp();
    const ms = managers(3, appId, appSecret);
    const first = await ms[0]!.get(appId);
    offset += 7200_000 - 240_000; // 4 minutes left on the sandbox clock and ours
    try {
      const after = await Promise.all(ms.flatMap((m) => Array.from({ length: 20 }, () => m.get(appId))));
      expect(callsTo('/cgi-bin/stable_token', appId)).toHaveLength(2);
      // The Kv already holds the renewed token: asking past the old one costs no fetch.
      const second = await ms[0]!.refresh(appId, first);
      expect(second).not.toBe(first);
      expect(after.every((t) => t === first || t === second)).toBe(true);
      expect(callsTo('/cgi-bin/stable_token', appId)).toHaveLength(2);
      // Stable tokens overlap (§2.2): the old one still works until its own expiry.
      const user = sandbox.createUser({ followsApps: [appId] });
      const oldOnly = { get: async () => first, refresh: async () => first };
      const api = createWeChatApi({ tokens: oldOnly, apiBaseUrl: base, logger: pino({ level: 'silent' }) });
      expect(await api.userInfo(appId, sandbox.openid(appId, user.userId))).toMatchObject({ subscribed: true });
    } finally {
      offset = 0;
    }
  });

  it('When the token endpoint answers 45009, then the quota error surfaces once across instances, without a fetch loop', async () => {
    const { appId, appSecret } = newApp();
    // The sandbox cannot filter stable_token faults by appId (the appid is in the body), so
    // this fault fires once for the next caller — ours — and the counts are deltas.
    const quotaErrors = () => sandbox.calls('/cgi-bin/stable_token').filter((c) => c.errcode === 45009).length;
    const before = quotaErrors();
    sandbox.inject({ path: '/cgi-bin/stable_token', errcode: 45009, count: 1 });
    const ms = managers(3, appId, appSecret);
    const results = await Promise.allSettled(ms.flatMap((m) => Array.from({ length: 10 }, () => m.get(appId))));
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toMatchObject({ name: 'WeChatApiError', errcode: 45009, kind: 'quota_daily' });
    }
    expect(quotaErrors() - before).toBe(1);
    expect(callsTo('/cgi-bin/stable_token', appId).filter((c) => c.errcode === 0)).toHaveLength(0);
  });

  it('When the AppSecret is wrong, then a config error surfaces (40125)', async () => {
    const { appId } = newApp();
    await expect(managers(1, appId, 'not-the-secret')[0]!.get(appId)).rejects.toMatchObject({ errcode: 40125, kind: 'config' });
  });
});
