/**
 * The WeChat client as the app wires it: in demo mode it talks to the sandbox mounted
 * at /sandbox over real HTTP, and the configured accounts are registered there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';

describe('WeChat wiring in demo mode', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app.stop();
  });

  it('When the app needs an access token, then it fetches one from the mounted sandbox, once', async () => {
    const appId = app.config.officialAccounts[0]!.appId;
    const [a, b] = await Promise.all([app.deps.wechat.tokens.get(appId), app.deps.wechat.tokens.get(appId)]);
    expect(a).toBe(b);
    expect(app.deps.wechat.sandbox!.calls('/cgi-bin/stable_token')).toHaveLength(1);
  });

  it('When a browser opens /sandbox/, then the sandbox pages are served under the prefix with our security headers', async () => {
    const r = await fetch(`${app.baseUrl}/sandbox/`, { headers: { accept: 'text/html' } });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-frame-options')).toBe('DENY');
    expect(await r.text()).toContain('/sandbox/');
  });

  it('When a QR code is made for a binding, then its image is served by the sandbox', async () => {
    const appId = app.config.officialAccounts[0]!.appId;
    const qr = await app.deps.wechat.api.createQrCode(appId, { scene: 'bind_test', expireSeconds: 600 });
    expect(qr.imageUrl.startsWith(`${app.baseUrl}/sandbox/`)).toBe(true);
    const img = await fetch(qr.imageUrl);
    expect(img.headers.get('content-type')).toBe('image/png');
  });
});
