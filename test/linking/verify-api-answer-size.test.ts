/**
 * The verify-api answer is "untrusted input: zod-checked, bounded" (src/linking/
 * verify-api.connector.ts; MAX_ANSWER_BYTES = 16 KiB). The body was once read whole with
 * `res.text()` and its length checked afterwards, so a merchant endpoint (set by a
 * merchant-scoped admin, see src/security/outbound.ts) streaming tens of MB was buffered
 * entirely in the bridge's memory before being refused — once per user request, 16 at a time
 * per merchant. Now a declared Content-Length over the cap is refused unread and the stream is
 * cancelled once past it (src/security/capped-body.ts). SECURITY.md D1/A7 (ASVS 16.5.2).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodyTooLargeError, readCappedText } from '../../src/security/capped-body.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { BOOT_TIMEOUT_MS, Browser, loginAs, newWeChatUser } from './helpers.ts';

const TOTAL = 48 * 1024 * 1024;
let app: TestApp;
let merchant: Server;
/** Bytes of the last answer the bridge accepted from our socket, and whether all of it went. */
let sent = { bytes: 0, finished: false };

beforeAll(async () => {
  merchant = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      sent = { bytes: 0, finished: false };
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20); // JSON whitespace
      const pump = () => {
        while (sent.bytes < TOTAL) {
          sent.bytes += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end('{"status":"rejected"}', () => (sent.finished = true));
      };
      res.on('close', () => undefined);
      pump();
    });
  });
  await new Promise<void>((r) => merchant.listen(0, '127.0.0.1', r));
  const file = join(mkdtempSync(join(tmpdir(), 'wxb-answer-size-')), 'config.json');
  writeFileSync(
    file,
    JSON.stringify({
      outbound: { allowPrivateNetworks: true },
      officialAccounts: [{ id: 'oa', appId: 'wx00000000000000bb', appSecret: 'answer-size-app-secret', token: 'tok123', originalId: 'gh_000000000bb' }],
      merchants: [
        {
          id: 'big',
          name: 'Big answers',
          officialAccount: 'oa',
          linking: [{ type: 'verify-api', url: `http://127.0.0.1:${(merchant.address() as AddressInfo).port}/verify`, secret: 'answer-size-verify-secret', timeoutMs: 10_000 }],
        },
      ],
    }),
  );
  app = await startTestApp({ env: { BRIDGE_CONFIG: file, SANDBOX: '1' } });
}, BOOT_TIMEOUT_MS);
afterAll(async () => {
  await app?.stop();
  await new Promise((r) => merchant.close(r));
});

describe('verify-api answer size bound', () => {
  it('When the merchant streams a 48 MB answer, then the bridge stops reading near the 16 KiB bound and refuses it (503), instead of buffering it all', async () => {
    const b = new Browser(app.baseUrl);
    await loginAs(app, b, 'big', (await newWeChatUser(app)).userId);
    const r = await b.get('/link/big/verify');
    expect(r.status).toBe(503); // refused as "merchant unavailable" either way
    await new Promise((res) => setTimeout(res, 200));
    // Before the fix the whole 48 MB was read by the bridge (`finished` true, bytes = 48 MB).
    expect(sent.finished).toBe(false);
    expect(sent.bytes).toBeLessThan(16 * 1024 * 1024);
  }, 120_000);

  describe('readCappedText', () => {
    /** A body of `chunks` chunks of `size` bytes that counts how many were pulled. */
    const counted = (chunks: number, size: number) => {
      const pulled = { n: 0 };
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          if (pulled.n === chunks) return c.close();
          pulled.n++;
          c.enqueue(new Uint8Array(size).fill(0x20));
        },
      });
      return { body, pulled };
    };

    it('When the declared Content-Length is over the cap, then nothing is read and it is refused', async () => {
      const { body, pulled } = counted(100, 1024);
      const res = new Response(body, { headers: { 'content-length': String(100 * 1024) } });
      await expect(readCappedText(res, 16 * 1024)).rejects.toBeInstanceOf(BodyTooLargeError);
      expect(pulled.n).toBeLessThanOrEqual(1); // at most what the stream queued on creation
    });

    it('When an undeclared body goes past the cap, then reading stops at the first chunk past it', async () => {
      const { body, pulled } = counted(1000, 1024);
      await expect(readCappedText(new Response(body), 16 * 1024)).rejects.toBeInstanceOf(BodyTooLargeError);
      expect(pulled.n).toBeLessThanOrEqual(18);
    });

    it('When the body is exactly at the cap, then it is returned whole (multi-byte UTF-8 kept)', async () => {
      const text = `${'x'.repeat(16 * 1024 - 6)}验证`;
      expect(await readCappedText(new Response(text), 16 * 1024)).toBe(text);
      expect(await readCappedText(new Response(null), 16)).toBe('');
    });
  });
});
