/**
 * Hostile input on the end-user pages (SECURITY.md A1 "Open redirectors", T11; issue 4
 * "Tests"): every return target refuses off-site values, and what a WeChat user or a
 * merchant's verify API supplies (nicknames, field labels, patterns, messages, account
 * displays) is escaped. The merchant here is a config of our own pointing at a loopback
 * server that answers the verify-api protocol with markup.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { BOOT_TIMEOUT_MS, Browser, field, loginAs, newWeChatUser } from './helpers.ts';

const XSS = '<script>alert(1)</script>';
const ATTR = '"><img src=x onerror=alert(2)>';
let app: TestApp;
let hostile: Server;

beforeAll(async () => {
  hostile = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const body = JSON.parse(raw) as { step: string; attempt: string };
      const answer =
        body.step === 'start'
          ? { status: 'continue', fields: [{ name: 'card', label: `${XSS}卡号`, type: 'text', pattern: ATTR }], message: `<img src=x onerror=alert(3)>${XSS}` }
          : { status: 'verified', account: { id: `evil-${body.attempt}`, display: `${XSS}${ATTR}` } };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', r));
  const dir = mkdtempSync(join(tmpdir(), 'wxb-hostile-'));
  const file = join(dir, 'config.json');
  writeFileSync(
    file,
    JSON.stringify({
      // The merchants' backends here listen on loopback, which the outbound policy refuses by default.
      outbound: { allowPrivateNetworks: true },
      officialAccounts: [{ id: 'oa', appId: 'wx00000000000000aa', appSecret: 'hostile-app-secret', token: 'tok123', originalId: 'gh_000000000aa' }],
      merchants: [
        {
          id: 'evil',
          name: `Evil ${XSS}`,
          officialAccount: 'oa',
          profile: 'userinfo',
          linking: [{ type: 'verify-api', url: `http://127.0.0.1:${(hostile.address() as AddressInfo).port}/verify`, secret: 'hostile-verify-secret' }],
        },
      ],
    }),
  );
  app = await startTestApp({ env: { BRIDGE_CONFIG: file, SANDBOX: '1' } });
}, BOOT_TIMEOUT_MS);
afterAll(async () => {
  await app.stop();
  await new Promise((r) => hostile.close(r));
});

const OFFSITE = [
  'https://evil.example/',
  '//evil.example/',
  '/\\evil.example',
  '\\\\evil.example',
  '/%2F%2Fevil.example',
  'https:evil.example',
  'javascript:alert(1)',
  '/\t/evil.example',
  '%2F%2Fevil.example',
  'http://user@evil.example',
];

describe('open redirects (RFC 9700 §4.11)', () => {
  it.each(OFFSITE)('When next is %j on /wechat/login or /link/:merchant, then it is refused with 400 and no redirect', async (next) => {
    const b = new Browser(app.baseUrl);
    for (const path of [`/wechat/login?merchant=evil&next=${encodeURIComponent(next)}`, `/link/evil?next=${encodeURIComponent(next)}`]) {
      const r = await b.get(path);
      expect(r.status).toBe(400);
      expect(r.location).toBeNull();
    }
  });

  it('When a form posts an off-site next, then it is dropped: no page or redirect points off-site', async () => {
    const b = new Browser(app.baseUrl);
    await loginAs(app, b, 'evil', (await newWeChatUser(app)).userId);
    const page = await b.get('/link/evil/code');
    const r = await b.post('/link/evil/code', { _csrf: field(page.text, '_csrf'), code: 'NOT-A-CODE', next: 'https://evil.example/' });
    expect(r.status).toBe(400);
    expect(r.location).toBeNull();
    expect(r.text).not.toContain('evil.example');
  });
});

describe('markup from users and merchants is escaped', () => {
  it('When a WeChat nickname carries markup, then the linked-accounts page shows it as text', async () => {
    const b = new Browser(app.baseUrl);
    const { userId } = await newWeChatUser(app, { nickname: `${XSS}${ATTR}`.slice(0, 64) });
    const page = await b.follow(await loginAs(app, b, 'evil', userId));
    expect(page.status).toBe(200);
    expect(page.text).not.toContain('<script>alert');
    expect(page.text).not.toContain('<img src=x');
    expect(page.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  it('When the merchant\'s fields, pattern, message and account display carry markup, then every one is escaped', async () => {
    const b = new Browser(app.baseUrl);
    await loginAs(app, b, 'evil', (await newWeChatUser(app)).userId);
    const form = await b.get('/link/evil/verify');
    expect(form.status).toBe(200);
    expect(form.text).not.toMatch(/<script>alert|<img src=x/);
    expect(form.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;卡号');
    expect(form.text).toContain('pattern="&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"');
    const done = await b.post('/link/evil/verify', { _csrf: field(form.text, '_csrf'), proof: field(form.text, 'proof'), card: '4242' });
    expect(done.location).toBe('/link/evil?done=linked');
    const page = await b.get(done.location!);
    expect(page.text).not.toMatch(/<script>alert|<img src=x/);
    expect(page.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img');
  });

  it('When a page is served, then its CSP forbids inline script', async () => {
    const r = await fetch(`${app.baseUrl}/link/evil`, { headers: { 'user-agent': 'x' }, redirect: 'manual' });
    expect(r.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(r.headers.get('content-security-policy')).not.toContain('unsafe-inline');
  });
});
