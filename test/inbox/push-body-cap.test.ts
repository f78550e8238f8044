/**
 * The body cap without Content-Length (issue 6: "bodies over a small cap refused with 413";
 * SECURITY.md A8, T12). WeChat, or an attacker, may stream a chunked body with no
 * Content-Length, which must be cut off at the cap as well.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './harness.ts';
import { signedPush, textPush } from './pushes.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

describe('body cap without Content-Length', () => {
  it('When a signed push streams a chunked body past the cap, then 413 and the rest is not read', async () => {
    const p = signedPush(h, 'plain', textPush(h, 'plain', 'oChunked', '余额', 7n));
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(p.url, { method: 'POST', headers: { 'content-type': 'text/xml', 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', (err) => reject(err));
      let sent = 0;
      const chunk = Buffer.alloc(16 * 1024, 0x61);
      const pump = () => {
        // Up to 1 MB, unless the server answered first.
        while (sent < 1024 * 1024) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    expect(status).toBe(413);
  });
});
