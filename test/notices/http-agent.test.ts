/**
 * The WeChat API transport the notice worker runs on (src/wechat/http-agent.ts; issue 7: it
 * replaces fetch, which was half of the worker's CPU). Against real loopback servers, through
 * `createWeChatHttp`, so the error classes the dispatcher relies on (SECURITY.md D2: what is
 * ambiguous, what certainly did not leave) are the same as with fetch.
 */
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { z } from 'zod';
import { afterAll, describe, expect, it } from 'vitest';
import { createWeChatHttp } from '../../src/wechat/http.ts';
import { createHttpAgentFetch } from '../../src/wechat/http-agent.ts';
import { listen } from './world.ts';

const log = pino({ level: 'silent' });
const transport = createHttpAgentFetch({ maxBodyBytes: 64 * 1024 });
afterAll(() => transport.close());
const schema = z.object({ msgid: z.string() }).passthrough();
const wx = (baseUrl: string, timeoutMs = 1_000) => createWeChatHttp({ baseUrl, fetch: transport, timeoutMs, logger: log });

describe('WeChat API transport over node:http keep-alive', () => {
  it('When a send is made, then method, path, query, headers and UTF-8 body arrive as fetch sent them, and the answer comes back', async () => {
    const seen: { method?: string; url?: string; type?: string; length?: string; body?: string }[] = [];
    const srv = await listen((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, type: req.headers['content-type'], length: req.headers['content-length'], body: Buffer.concat(chunks).toString('utf8') });
        res.setHeader('content-type', 'application/json');
        res.end('{"errcode":0,"errmsg":"ok","msgid":1234567890123456789}');
      });
    });
    try {
      const r = await wx(srv.url).call({ method: 'POST', path: '/cgi-bin/message/template/send', query: { access_token: 'TOKEN' }, body: { touser: 'o1', text: '信用卡中心' }, schema, idempotent: false });
      // int64 msgid kept exact (lossless JSON), as with fetch.
      expect(r.msgid).toBe('1234567890123456789');
      expect(seen[0]).toMatchObject({ method: 'POST', url: '/cgi-bin/message/template/send?access_token=TOKEN', type: 'application/json; charset=utf-8' });
      expect(JSON.parse(seen[0]!.body!)).toEqual({ touser: 'o1', text: '信用卡中心' });
      expect(Number(seen[0]!.length)).toBe(Buffer.byteLength(seen[0]!.body!));
    } finally {
      await srv.close();
    }
  });

  it('When calls follow one another, then they reuse one keep-alive connection', async () => {
    const sockets = new Set<unknown>();
    const srv = await listen((req, res) => {
      sockets.add(req.socket);
      res.end('{"msgid":"1"}');
    });
    try {
      for (let i = 0; i < 5; i++) await wx(srv.url).call({ method: 'POST', path: '/s', body: {}, schema, idempotent: false });
      expect(sockets.size).toBe(1);
    } finally {
      await srv.close();
    }
  });

  it('When nothing listens, then even a send is not ambiguous (refused: nothing left this host)', async () => {
    const probe = createNetServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const e = await wx(`http://127.0.0.1:${port}`).call({ method: 'POST', path: '/s', body: {}, schema, idempotent: false }).catch((x: unknown) => x);
    expect(e).toMatchObject({ name: 'WeChatTransportError', reason: 'network', ambiguous: false });
  });

  it('When the connection drops after the request was sent, then a send is ambiguous', async () => {
    const srv = await listen((req) => req.socket.destroy());
    try {
      const e = await wx(srv.url).call({ method: 'POST', path: '/s', body: {}, schema, idempotent: false }).catch((x: unknown) => x);
      expect(e).toMatchObject({ name: 'WeChatTransportError', reason: 'network', ambiguous: true });
    } finally {
      await srv.close();
    }
  });

  it('When WeChat does not answer in time, then the call times out (ambiguous for a send) and the connection is dropped', async () => {
    let closed = false;
    const srv = await listen((req) => req.socket.on('close', () => (closed = true)));
    try {
      const started = Date.now();
      const e = await wx(srv.url, 50).call({ method: 'POST', path: '/s', body: {}, schema, idempotent: false }).catch((x: unknown) => x);
      expect(e).toMatchObject({ reason: 'timeout', ambiguous: true });
      expect(Date.now() - started).toBeLessThan(1_000);
      await new Promise((r) => setTimeout(r, 50));
      expect(closed).toBe(true);
    } finally {
      await srv.close();
    }
  });

  it('When the status is 5xx or the body is too large, then the call fails like it does over fetch', async () => {
    const srv = await listen((req, res) => {
      if (req.url === '/big') return res.end(`{"msgid":"${'9'.repeat(100_000)}"}`);
      res.statusCode = 502;
      res.end('bad gateway');
    });
    try {
      expect(await wx(srv.url).call({ method: 'POST', path: '/s', body: {}, schema, idempotent: false }).catch((x: unknown) => x)).toMatchObject({ reason: 'http_status', status: 502, ambiguous: true });
      expect(await wx(srv.url).call({ method: 'GET', path: '/big', schema, idempotent: true }).catch((x: unknown) => x)).toMatchObject({ name: 'WeChatTransportError', reason: 'network' });
    } finally {
      await srv.close();
    }
  });
});
