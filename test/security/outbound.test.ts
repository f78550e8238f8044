/**
 * The outbound policy for merchant-configured URLs (src/security/outbound.ts; ASVS 5.2.6,
 * SSRF): which addresses count as public, the check in the socket's own DNS lookup (so a
 * name cannot resolve one way when checked and another when connecting), literal addresses,
 * the settings that allow private destinations, and the wiring: in a production deployment
 * a merchant verify API on loopback is refused, nothing is linked and the log says why.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { LookupAddress } from 'node:dns';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoFileConfig } from '../../src/config/demo.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createOutboundFetch, guardedLookup, isPublicAddress, outboundRefusal, type OutboundPolicy } from '../../src/security/outbound.ts';
import { demoConfigFile, freePort, startTestApp, TEST_SECRET_KEY, type TestApp } from '../helpers/app.ts';
import { Browser, capturedLogger, freshCard, loginAs, newWeChatUser, verifyAccount } from '../linking/helpers.ts';

const DENY: OutboundPolicy = { allowPrivateNetworks: false, allowHosts: [] };

describe('which addresses are public', () => {
  it.each([
    ['8.8.8.8', true],
    ['1.1.1.1', true],
    ['2606:4700:4700::1111', true],
    ['127.0.0.1', false],
    ['127.255.0.9', false],
    ['10.0.0.5', false],
    ['172.16.0.1', false],
    ['172.31.255.255', false],
    ['172.32.0.1', true],
    ['192.168.1.1', false],
    ['169.254.169.254', false],
    ['100.64.0.1', false],
    ['0.0.0.0', false],
    ['224.0.0.1', false],
    ['255.255.255.255', false],
    ['198.51.100.7', false],
    ['::1', false],
    ['::', false],
    ['fe80::1', false],
    ['fd12:3456::1', false],
    ['ff02::1', false],
    ['::ffff:127.0.0.1', false],
    ['::ffff:7f00:1', false],
    ['::ffff:8.8.8.8', true],
    ['64:ff9b::a00:1', false],
    ['not-an-ip', false],
  ])('%s → public: %s', (ip, expected) => {
    expect(isPublicAddress(ip)).toBe(expected);
  });
});

/** A resolver that answers from a table, as dns.lookup with `all: true` would. */
function fakeResolver(table: Record<string, string[]>) {
  return ((host: string, _opts: unknown, cb: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => {
    const ips = table[host];
    if (!ips) return cb(Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' }), []);
    cb(null, ips.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  }) as never;
}

describe('the lookup every connection makes', () => {
  const lookupOnce = (policy: OutboundPolicy, host: string, table: Record<string, string[]>, all: boolean) =>
    new Promise<{ err: Error | null; address: unknown }>((resolve) => guardedLookup(policy, fakeResolver(table))(host, { all }, (err, address) => resolve({ err, address })));

  it('When a name resolves only to public addresses, then they are handed to the socket as asked (one, or all)', async () => {
    const table = { 'bank.example': ['203.0.114.10', '2606:4700::10'] };
    expect(await lookupOnce(DENY, 'bank.example', table, false)).toEqual({ err: null, address: '203.0.114.10' });
    const all = await lookupOnce(DENY, 'bank.example', table, true);
    expect(all.address).toEqual([
      { address: '203.0.114.10', family: 4 },
      { address: '2606:4700::10', family: 6 },
    ]);
  });

  it('When any address of a name is private (a rebinding answer among public ones), then the whole lookup is refused, naming host, address and the setting', async () => {
    const r = await lookupOnce(DENY, 'bank.example', { 'bank.example': ['203.0.114.10', '127.0.0.1'] }, true);
    expect(outboundRefusal(r.err)?.message).toBe(
      'outbound request to bank.example refused: 127.0.0.1 is not a public address (allow it with outbound.allowPrivateNetworks or outbound.allowHosts)',
    );
  });

  it('When private networks are allowed, or the host is listed, then private answers pass', async () => {
    const table = { 'verify.bank.internal': ['10.1.2.3'] };
    expect((await lookupOnce({ allowPrivateNetworks: true, allowHosts: [] }, 'verify.bank.internal', table, false)).address).toBe('10.1.2.3');
    expect((await lookupOnce({ allowPrivateNetworks: false, allowHosts: ['Verify.Bank.Internal'] }, 'verify.bank.internal', table, false)).address).toBe('10.1.2.3');
    expect((await lookupOnce({ allowPrivateNetworks: false, allowHosts: ['other.internal'] }, 'verify.bank.internal', table, false)).err).not.toBeNull();
  });
});

describe('the guarded fetch against a real server on loopback', () => {
  let server: Server;
  let port = 0;
  let hits = 0;
  beforeAll(async () => {
    server = createServer((_req, res) => {
      hits += 1;
      res.end('secret internal answer');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  async function attempt(policy: OutboundPolicy, url: string, table?: Record<string, string[]>): Promise<string> {
    const out = table ? createOutboundFetch(policy, globalThis.fetch, fakeResolver(table)) : createOutboundFetch(policy);
    try {
      const r = await out.fetch(url);
      return `${r.status} ${await r.text()}`;
    } catch (err) {
      return outboundRefusal(err) ? 'refused' : `error ${String((err as Error).cause ?? err)}`;
    } finally {
      await out.close();
    }
  }

  it('When the policy denies private networks, then localhost, literal loopback (v4, v6-mapped) and a public-looking name resolving to loopback are refused before any byte is sent', async () => {
    const before = hits;
    expect(await attempt(DENY, `http://localhost:${port}/`)).toBe('refused');
    expect(await attempt(DENY, `http://127.0.0.1:${port}/`)).toBe('refused');
    expect(await attempt(DENY, `http://[::ffff:127.0.0.1]:${port}/`)).toBe('refused');
    expect(await attempt(DENY, `http://merchant.example:${port}/`, { 'merchant.example': ['127.0.0.1'] })).toBe('refused');
    expect(hits).toBe(before);
  });

  it('When private networks are allowed, or the name is listed, then the request goes through', async () => {
    expect(await attempt({ allowPrivateNetworks: true, allowHosts: [] }, `http://127.0.0.1:${port}/`)).toBe('200 secret internal answer');
    expect(await attempt({ allowPrivateNetworks: false, allowHosts: ['localhost'] }, `http://localhost:${port}/`)).toBe('200 secret internal answer');
  });

  it('When the URL is not http(s), then it is refused', async () => {
    const out = createOutboundFetch({ allowPrivateNetworks: true, allowHosts: [] });
    await expect(out.fetch('file:///etc/passwd')).rejects.toThrow(/unsupported protocol file:/);
    await out.close();
  });
});

describe('config', () => {
  const load = (file: object | null) => {
    const dir = mkdtempSync(join(tmpdir(), 'wxb-outbound-'));
    const env: NodeJS.ProcessEnv = { DATA_DIR: dir, BRIDGE_SECRET_KEY: TEST_SECRET_KEY };
    if (file) {
      writeFileSync(join(dir, 'c.json'), JSON.stringify(file));
      env.BRIDGE_CONFIG = join(dir, 'c.json');
    }
    return loadConfig({ env });
  };

  it('When a config file says nothing, then private networks are refused; demo mode (its bank is local) allows them', () => {
    const { outbound: _omit, ...withoutOutbound } = demoFileConfig('http://localhost:3000') as Record<string, unknown>;
    expect(load(withoutOutbound).outbound).toEqual({ allowPrivateNetworks: false, allowHosts: [] });
    expect(load(null).outbound.allowPrivateNetworks).toBe(true);
  });

  it('When allowHosts holds something that is not a host, then start-up stops naming it', () => {
    expect(() => load({ ...(demoFileConfig('http://localhost:3000') as object), outbound: { allowHosts: ['http://x/'] } })).toThrow(/outbound\.allowHosts\[0\]: must be a host name or an IP address/);
  });
});

describe('a production deployment whose merchant verify API is on loopback', () => {
  let app: TestApp;
  const { log, lines } = capturedLogger('debug');
  beforeAll(async () => {
    const port = await freePort();
    const publicUrl = `http://localhost:${port}`;
    // The demo world (its bank's verify API at publicUrl/demo/merchant/...), without demo mode's allowance.
    const file = demoConfigFile(publicUrl, { outbound: { allowPrivateNetworks: false } });
    app = await startTestApp({ env: { PORT: String(port), PUBLIC_URL: publicUrl, BRIDGE_CONFIG: file, SANDBOX: '1' }, overrides: { log } });
  }, 180_000);
  afterAll(async () => {
    await app?.stop();
  });

  it('When a user tries to link, then the verify API is never called, nothing is linked, and the log names the refusal', async () => {
    const b = new Browser(app.baseUrl);
    const { userId } = await newWeChatUser(app);
    await loginAs(app, b, 'card', userId);
    const r = await verifyAccount(b, 'card', { card: freshCard() });
    expect(r.status).not.toBe(303);
    const bindings = await app.deps.db.query(`SELECT count(*)::int AS n FROM bindings WHERE merchant_id = 'card'`);
    expect(bindings.rows[0]).toEqual({ n: 0 });
    expect(lines.join('\n')).toContain(`outbound request to localhost refused: 127.0.0.1 is not a public address`);
  });
});
