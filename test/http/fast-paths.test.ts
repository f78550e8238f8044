/**
 * The kernel's hot paths (issue #9) through the real app: precomputed documents served ahead
 * of the routers, one dispatch step in front of the feature routers, and the request logger
 * made only when something logs. Each behaviour here is what the slower stack did before.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';

const SECURITY_HEADERS = ['content-security-policy', 'x-frame-options', 'x-content-type-options', 'referrer-policy', 'cross-origin-opener-policy', 'permissions-policy'];

describe('HTTP kernel hot paths', () => {
  let app: TestApp;
  const lines: Record<string, unknown>[] = [];
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    app = await startTestApp({ overrides: { log: pino({ level: 'info' }, sink) } });
  });
  afterAll(async () => {
    await app.stop();
  });

  it('When the JWKS is fetched, then it comes from the precomputed document with every kernel header', async () => {
    const r = await fetch(`${app.baseUrl}/.well-known/jwks.json`);
    expect(r.status).toBe(200);
    const jwks = (await r.json()) as { keys: { kid: string }[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
    for (const h of SECURITY_HEADERS) expect(r.headers.get(h), h).toBeTruthy();
    expect(r.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(r.headers.get('cache-control')).toMatch(/^public, max-age=\d+$/);
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    expect(r.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    const etag = r.headers.get('etag')!;
    expect(etag).toMatch(/^"[\w-]{27}"$/);

    const again = await fetch(`${app.baseUrl}/.well-known/jwks.json`, { headers: { 'if-none-match': `W/${etag}`, 'x-request-id': 'caller-id-0001' } });
    expect(again.status).toBe(304);
    expect(again.headers.get('etag')).toBe(etag);
    expect(again.headers.get('x-request-id')).toBe('caller-id-0001');
    expect(again.headers.get('x-frame-options')).toBe('DENY');

    const head = await fetch(`${app.baseUrl}/.well-known/jwks.json`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('When a precomputed document is answered before Koa, then it carries exactly the headers the Koa path gives, and is measured', async () => {
    const strip = (r: Response) => [...r.headers].filter(([k]) => !['x-request-id', 'date', 'keep-alive', 'connection'].includes(k)).sort();
    for (const path of ['/.well-known/jwks.json', '/.well-known/openid-configuration', '/healthz']) {
      const front = await fetch(`${app.baseUrl}${path}`);
      const koa = await fetch(`${app.baseUrl}${path}?via=koa`); // a query string takes the Koa path
      expect(front.status).toBe(200);
      expect(strip(front)).toEqual(strip(koa));
      expect(await front.text()).toBe(await koa.text());
      const etag = front.headers.get('etag');
      if (etag) {
        const a = await fetch(`${app.baseUrl}${path}`, { headers: { 'if-none-match': etag } });
        const b = await fetch(`${app.baseUrl}${path}?via=koa`, { headers: { 'if-none-match': etag } });
        expect([a.status, b.status]).toEqual([304, 304]);
        expect(strip(a)).toEqual(strip(b));
      }
    }
    const metrics = await (await fetch(`${app.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/wxbridge_http_request_duration_seconds_count\{[^}]*route="\/\.well-known\/jwks\.json"[^}]*status="200"[^}]*\} \d+/);
  });

  it('When the discovery documents and /healthz are fetched, then bodies and types are what the routes give', async () => {
    const oidc = await fetch(`${app.baseUrl}/.well-known/openid-configuration`);
    const meta = (await oidc.json()) as { issuer: string; jwks_uri: string };
    expect(meta.jwks_uri).toBe(`${meta.issuer}/.well-known/jwks.json`);
    const rfc8414 = await fetch(`${app.baseUrl}/.well-known/oauth-authorization-server`);
    expect(rfc8414.headers.get('etag')).toBe(oidc.headers.get('etag'));

    const h = await fetch(`${app.baseUrl}/healthz`);
    expect(h.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(h.headers.get('cache-control')).toBe('no-store');
    expect(await h.json()).toEqual({ status: 'ok' });
  });

  it('When a precomputed path is spelled otherwise, then the router still answers it as before', async () => {
    expect((await fetch(`${app.baseUrl}/healthz/`)).status).toBe(200);
    const upper = await fetch(`${app.baseUrl}/.WELL-KNOWN/JWKS.JSON`);
    expect(upper.status).toBe(200);
    expect(upper.headers.get('etag')).toBe((await fetch(`${app.baseUrl}/.well-known/jwks.json`)).headers.get('etag'));
  });

  it('When a route is called with a method it lacks, then 405 with Allow; OPTIONS lists them; an unknown method is 501', async () => {
    const post = await fetch(`${app.baseUrl}/.well-known/jwks.json`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toContain('GET');
    const options = await fetch(`${app.baseUrl}/wechat/push/demo`, { method: 'OPTIONS' });
    expect(options.status).toBe(200);
    expect(options.headers.get('allow')).toContain('POST');
    const weird = await fetch(`${app.baseUrl}/no-feature-has-this`, { method: 'PROPFIND' });
    expect(weird.status).toBe(501);
  });

  it('When requests are served, then the duration histogram labels precomputed and routed paths by route', async () => {
    await fetch(`${app.baseUrl}/.well-known/jwks.json`);
    await fetch(`${app.baseUrl}/wechat/push/demo?signature=x`);
    const text = await (await fetch(`${app.baseUrl}/metrics`)).text();
    expect(text).toMatch(/wxbridge_http_request_duration_seconds_count\{method="GET",route="\/\.well-known\/jwks\.json",status="200"\} \d+/);
    expect(text).toMatch(/wxbridge_http_request_duration_seconds_count\{method="GET",route="\/wechat\/push\/:account",status="400"\} \d+/);
  });

  it('When a request logs, then its lines carry its request id; the access line is written at info', async () => {
    lines.length = 0;
    const r = await fetch(`${app.baseUrl}/api/v1/nothing-here`, { headers: { 'x-request-id': 'trace-me-0042' } });
    expect(r.status).toBe(404);
    await new Promise((res) => setTimeout(res, 50));
    const mine = lines.filter((l) => l.reqId === 'trace-me-0042');
    expect(mine.map((l) => l.msg)).toEqual(['request refused', 'request']);
    expect(mine[1]).toMatchObject({ method: 'GET', path: '/api/v1/nothing-here', status: 404 });
  });
});
