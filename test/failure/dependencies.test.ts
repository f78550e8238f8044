/**
 * Dependency failures (issue: foundation; SECURITY.md D1): unreachable at start → a
 * named error and a non-zero exit; lost while running → /readyz 503 within 1 s and
 * callers get DependencyUnavailableError fast (no hang); back → ready again without a
 * restart. "Lost" is simulated with a TCP proxy we cut, so the shared servers stay up.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../../src/http/errors.ts';
import { createPgDb } from '../../src/store/db-pg.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createSchemaDb, DATABASE_URL, REDIS_URL } from '../helpers/stores.ts';
import { hostPort, startTcpProxy, viaProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

function runMain(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { PATH: process.env.PATH, LOG_LEVEL: 'silent', DATA_DIR: '/tmp/wxb-fail-start', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

async function until(fn: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (await fn()) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`condition not met in ${timeoutMs} ms`);
}

describe('start-up with a dependency missing', () => {
  it('When PostgreSQL is unreachable at start, then the process names it and exits non-zero', async () => {
    const r = await runMain({ DATABASE_URL: 'postgres://wx:pw@127.0.0.1:1/none' });
    expect(r.code).toBe(1);
    expect(r.out).toContain('PostgreSQL at DATABASE_URL');
    expect(r.out).not.toContain(':pw@');
    expect(r.out).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('When Redis is unreachable at start, then the process names it and exits non-zero', async () => {
    const r = await runMain({ REDIS_URL: 'redis://127.0.0.1:1' });
    expect(r.code).toBe(1);
    expect(r.out).toContain('Redis at REDIS_URL');
  });

  it('When the configuration is wrong, then every problem is listed and the exit code is 2', async () => {
    const r = await runMain({ PORT: 'x', ROLE: 'king', BRIDGE_CONFIG: '/nonexistent.yaml' });
    expect(r.code).toBe(2);
    expect(r.out).toContain('env PORT');
    expect(r.out).toContain('env ROLE');
    expect(r.out).toContain('env BRIDGE_CONFIG');
    expect(r.out).toContain('env BRIDGE_SECRET_KEY');
  });
});

describe.skipIf(!DATABASE_URL || !REDIS_URL)('a dependency lost while running (needs DATABASE_URL and REDIS_URL)', () => {
  let pgProxy: TcpProxy;
  let redisProxy: TcpProxy;
  let app: TestApp;

  beforeAll(async () => {
    pgProxy = await startTcpProxy(hostPort(DATABASE_URL!, 5432));
    redisProxy = await startTcpProxy(hostPort(REDIS_URL!, 6379));
    const db = await createSchemaDb(viaProxy(DATABASE_URL!, pgProxy.port));
    app = await startTestApp({ env: { REDIS_URL: viaProxy(REDIS_URL!, redisProxy.port) }, overrides: { db } });
  });
  afterAll(async () => {
    await app.stop();
    await app.deps.db.close().catch(() => undefined);
    await pgProxy.close();
    await redisProxy.close();
  });

  const ready = async () => (await fetch(`${app.baseUrl}/readyz`)).status === 200;

  it('When Redis goes away, then readiness is 503 within 1 s, Kv calls fail fast, and it recovers without restart', async () => {
    expect(await ready()).toBe(true);
    redisProxy.cut();
    const t0 = Date.now();
    const r = await fetch(`${app.baseUrl}/readyz`);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ status: 'unavailable', checks: { kv: 'down', db: 'ok' } });
    const t1 = Date.now();
    await expect(app.deps.kv.get('x')).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(Date.now() - t1).toBeLessThan(600);
    redisProxy.restore();
    const recovered = await until(ready, 5000);
    expect(recovered).toBeLessThan(5000);
    await expect(app.deps.kv.set('x', 'y', 1000)).resolves.toBeUndefined();
  });

  it('When PostgreSQL goes away, then readiness is 503 within 1 s, queries fail fast, and it recovers without restart', async () => {
    expect(await ready()).toBe(true);
    pgProxy.cut();
    const t0 = Date.now();
    const r = await fetch(`${app.baseUrl}/readyz`);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ checks: { db: 'down', kv: 'ok' } });
    const t1 = Date.now();
    await expect(app.deps.db.query('SELECT 1')).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(Date.now() - t1).toBeLessThan(1500);
    pgProxy.restore();
    expect(await until(ready, 5000)).toBeLessThan(5000);
    await expect(app.deps.db.query('SELECT 1')).resolves.toMatchObject({ rowCount: 1 });
  });
});

describe.skipIf(!DATABASE_URL)('the wait for a pooled connection (needs DATABASE_URL)', () => {
  it('When every connection is busy for longer than the connect timeout, then a query waits its turn instead of failing (the old 1 s pool-wait 503)', async () => {
    const db = await createPgDb({ url: DATABASE_URL!, max: 1, connectTimeoutMs: 1000, poolWaitMs: 5000 });
    try {
      const held = db.transaction(async (tx) => {
        await tx.query('SELECT pg_sleep(1.5)');
      });
      await new Promise((r) => setTimeout(r, 50));
      const t0 = Date.now();
      await expect(db.query('SELECT 1 AS one')).resolves.toMatchObject({ rows: [{ one: 1 }] });
      expect(Date.now() - t0).toBeGreaterThan(1000);
      await held;
      expect(db.poolStats()).toMatchObject({ timedOut: 0, waited: 1 });
    } finally {
      await db.close();
    }
  });

  it('When PostgreSQL goes away while requests queue for a connection, then they all fail within 1 s, not after the wait budget', async () => {
    const proxy = await startTcpProxy(hostPort(DATABASE_URL!, 5432));
    const db = await createPgDb({ url: viaProxy(DATABASE_URL!, proxy.port), max: 1, poolWaitMs: 10_000 });
    try {
      let release: () => void = () => undefined;
      const gate = new Promise<void>((r) => (release = r));
      const held = db.transaction(async (tx) => {
        await tx.query('SELECT 1');
        await gate;
        await tx.query('SELECT 1');
      });
      await new Promise((r) => setTimeout(r, 50));
      const queued = Array.from({ length: 5 }, () => db.query('SELECT 1'));
      proxy.cut();
      release();
      const t0 = Date.now();
      const settled = await Promise.allSettled(queued);
      expect(Date.now() - t0).toBeLessThan(1000);
      for (const r of settled) expect(r.status === 'rejected' && r.reason instanceof DependencyUnavailableError).toBe(true);
      await expect(held).rejects.toBeInstanceOf(DependencyUnavailableError);
    } finally {
      await db.close().catch(() => undefined);
      await proxy.close();
    }
  });
});
