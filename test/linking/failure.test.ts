/**
 * Redis or PostgreSQL lost mid-flow (SECURITY.md D1, T9; issue 4 "Tests"): the login callback
 * and the linking step fail closed with a retry page, fast, and leave nothing half-written;
 * once the store is back the user can finish. A dependency is "lost" by cutting a TCP proxy
 * in front of it, so the shared servers stay up. Needs DATABASE_URL and REDIS_URL (CI).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LinkingFeature } from '../../src/linking/index.ts';
import type { TestApp } from '../helpers/app.ts';
import { createSchemaDb, DATABASE_URL, REDIS_URL } from '../helpers/stores.ts';
import { hostPort, startTcpProxy, viaProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { BOOT_TIMEOUT_MS, startLinkingApp, authorizeAt, Browser, control, field, freshCard, loginAs, newWeChatUser, startLogin } from './helpers.ts';

describe.skipIf(!DATABASE_URL || !REDIS_URL)('a store lost mid-flow (needs DATABASE_URL and REDIS_URL)', () => {
  let pgProxy: TcpProxy;
  let redisProxy: TcpProxy;
  let app: TestApp;
  let linking: LinkingFeature;

  beforeAll(async () => {
    pgProxy = await startTcpProxy(hostPort(DATABASE_URL!, 5432));
    redisProxy = await startTcpProxy(hostPort(REDIS_URL!, 6379));
    const db = await createSchemaDb(viaProxy(DATABASE_URL!, pgProxy.port));
    ({ app, linking } = await startLinkingApp({ env: { REDIS_URL: viaProxy(REDIS_URL!, redisProxy.port) }, overrides: { db } }));
  }, BOOT_TIMEOUT_MS);
  afterAll(async () => {
    await app.stop();
    await app.deps.db.close().catch(() => undefined);
    await pgProxy.close();
    await redisProxy.close();
  });

  const identities = async () => Number((await app.deps.db.query<{ n: number }>('SELECT count(*)::int AS n FROM identities')).rows[0]!.n);
  const timed = async <T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> => {
    const t0 = Date.now();
    const value = await fn();
    return { value, ms: Date.now() - t0 };
  };

  it('When Redis is down at the callback, then a retry page in under a second, no code exchange, no identity; after recovery the same flow completes', async () => {
    const b = new Browser(app.baseUrl);
    const { userId } = await newWeChatUser(app);
    const cb = new URL(await authorizeAt(app, await startLogin(b, 'power'), userId));
    const before = await identities();
    const exchanges = async () => (await control<unknown[]>(app, '/calls?path=/sns/oauth2/access_token')).length;
    const exchangedBefore = await exchanges();
    redisProxy.cut();
    const { value: r, ms } = await timed(() => b.get(cb.pathname + cb.search));
    redisProxy.restore();
    expect(await exchanges()).toBe(exchangedBefore);
    expect(r.status).toBe(503);
    expect(r.text).toContain('暂时无法完成');
    expect(ms).toBeLessThan(1000);
    expect(b.jar.get('wxb_sess')).toBeUndefined();
    expect(await identities()).toBe(before);
    await new Promise((res) => setTimeout(res, 300)); // ioredis reconnects within its capped delay
    const again = await b.get(cb.pathname + cb.search);
    expect(again.status).toBe(302);
    expect(b.jar.get('wxb_sess')).toBeDefined();
  });

  it('When PostgreSQL is down at the callback, then a retry page, no session and no identity; the replay gets the same page; a new login works', async () => {
    const b = new Browser(app.baseUrl);
    const { userId } = await newWeChatUser(app);
    const cb = new URL(await authorizeAt(app, await startLogin(b, 'power'), userId));
    const before = await identities();
    pgProxy.cut();
    const { value: r, ms } = await timed(() => b.get(cb.pathname + cb.search));
    const replay = await b.get(cb.pathname + cb.search);
    pgProxy.restore();
    expect(r.status).toBe(503);
    expect(ms).toBeLessThan(2000);
    expect(replay.status).toBe(503);
    expect(b.jar.get('wxb_sess')).toBeUndefined();
    expect(await identities()).toBe(before);
    const fresh = await loginAs(app, new Browser(app.baseUrl), 'power', userId);
    expect(fresh.status).toBe(302);
    expect(await identities()).toBe(before + 1);
  });

  it('When PostgreSQL is down at the last proof step, then a retry page and no binding, webhook or audit row; later the user links', async () => {
    const b = new Browser(app.baseUrl);
    await loginAs(app, b, 'card', (await newWeChatUser(app)).userId);
    const card = freshCard();
    const start = await b.get('/link/card/verify');
    const sms = await b.post('/link/card/verify', { _csrf: field(start.text, '_csrf'), proof: field(start.text, 'proof'), card });
    const counts = async () =>
      (await app.deps.db.query<{ b: number; w: number; a: number }>(
        'SELECT (SELECT count(*)::int FROM bindings) AS b, (SELECT count(*)::int FROM webhook_events) AS w, (SELECT count(*)::int FROM audit_log) AS a',
      )).rows[0];
    const before = await counts();
    pgProxy.cut();
    const r = await b.post('/link/card/verify', { _csrf: field(sms.text, '_csrf'), proof: field(sms.text, 'proof'), sms: '123456' });
    pgProxy.restore();
    expect(r.status).toBe(503);
    expect(r.text).toContain('暂时无法完成');
    expect(await counts()).toEqual(before);
    expect((await linking.service.verifyAuditChain()).ok).toBe(true);
    const start2 = await b.get('/link/card/verify');
    const sms2 = await b.post('/link/card/verify', { _csrf: field(start2.text, '_csrf'), proof: field(start2.text, 'proof'), card });
    const done = await b.post('/link/card/verify', { _csrf: field(sms2.text, '_csrf'), proof: field(sms2.text, 'proof'), sms: '123456' });
    expect(done.location).toBe('/link/card?done=linked');
  });

  it('When Redis is down when a login starts, then 503 at once and no redirect to WeChat', async () => {
    const b = new Browser(app.baseUrl);
    redisProxy.cut();
    const { value: r, ms } = await timed(() => b.get('/wechat/login?merchant=power'));
    redisProxy.restore();
    expect(r.status).toBe(503);
    expect(r.location).toBeNull();
    expect(ms).toBeLessThan(1000);
  });
});
