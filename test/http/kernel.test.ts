/**
 * The HTTP kernel through the real app: ops endpoints, error bodies by audience,
 * security headers, body caps, static files.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';

describe('HTTP kernel', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app.stop();
  });

  it('When /healthz and /readyz are asked, then both answer 200 with the checks', async () => {
    expect((await fetch(`${app.baseUrl}/healthz`)).status).toBe(200);
    const r = await fetch(`${app.baseUrl}/readyz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: 'ready', checks: { db: 'ok', kv: 'ok' } });
  });

  it('When /metrics is scraped, then Prometheus text with the HTTP histogram comes back', async () => {
    await fetch(`${app.baseUrl}/healthz`);
    const r = await fetch(`${app.baseUrl}/metrics`);
    expect(r.headers.get('content-type')).toContain('text/plain');
    const text = await r.text();
    expect(text).toContain('wxbridge_http_request_duration_seconds');
    expect(text).toContain('wxbridge_process_cpu_seconds_total');
  });

  it('When an API client hits an unknown route, then it gets a JSON error body and a request id', async () => {
    const r = await fetch(`${app.baseUrl}/api/v1/nothing-here`);
    expect(r.status).toBe(404);
    expect(r.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(await r.json()).toEqual({ error: 'request.not_found', error_description: 'This page does not exist.' });
  });

  it('When a browser hits an unknown page, then it gets a rendered, localized error page without internals', async () => {
    const zh = await fetch(`${app.baseUrl}/nothing`, { headers: { accept: 'text/html' } });
    expect(zh.status).toBe(404);
    expect(zh.headers.get('content-type')).toContain('text/html');
    const html = await zh.text();
    expect(html).toContain('页面不存在');
    expect(html).toContain(zh.headers.get('x-request-id')!);
    const en = await fetch(`${app.baseUrl}/nothing`, { headers: { accept: 'text/html', 'accept-language': 'en-US,en;q=0.9' } });
    expect(await en.text()).toContain('This page does not exist');
  });

  it('When any response is sent, then the security headers are on it', async () => {
    const r = await fetch(`${app.baseUrl}/healthz`);
    const csp = r.headers.get('content-security-policy')!;
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(r.headers.get('x-frame-options')).toBe('DENY');
    expect(r.headers.get('referrer-policy')).toBe('no-referrer');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('cache-control')).toBe('no-store');
  });

  it('When the stylesheet is requested, then it is served with a cache lifetime; traversal is refused', async () => {
    const r = await fetch(`${app.baseUrl}/static/css/app.css`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/css');
    expect(r.headers.get('cache-control')).toContain('max-age=');
    const t = await fetch(`${app.baseUrl}/static/..%2f..%2fpackage.json`);
    expect(t.status).toBe(404);
  });

  it('When an X-Request-Id is supplied in a safe form, then it is echoed; otherwise a new one is made', async () => {
    const ok = await fetch(`${app.baseUrl}/healthz`, { headers: { 'x-request-id': 'lb-1234567890' } });
    expect(ok.headers.get('x-request-id')).toBe('lb-1234567890');
    const bad = await fetch(`${app.baseUrl}/healthz`, { headers: { 'x-request-id': '<script>' } });
    expect(bad.headers.get('x-request-id')).not.toBe('<script>');
  });
});

describe('home page', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app.stop();
  });

  it('When a desktop browser opens /, then the journey map with the demo start link is shown, in Chinese by default', async () => {
    const html = await (await fetch(`${app.baseUrl}/`, { headers: { accept: 'text/html' } })).text();
    expect(html).toContain('href="/demo/app"');
    expect(html).toContain('信用卡中心');
    const en = await (await fetch(`${app.baseUrl}/?lang=en`)).text();
    expect(en).toContain('Link a demo card');
  });
});

describe('ROLE=worker', () => {
  it('When the process runs as a worker, then it serves only the ops endpoints', async () => {
    const app = await startTestApp({ env: { ROLE: 'worker' } });
    try {
      expect((await fetch(`${app.baseUrl}/readyz`)).status).toBe(200);
      expect((await fetch(`${app.baseUrl}/`)).status).toBe(404);
    } finally {
      await app.stop();
    }
  });
});
