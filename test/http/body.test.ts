/**
 * Raw request bodies (src/http/body.ts) over a real socket: bytes arrive intact however
 * they are chunked, and a body past its cap is refused with 413 even when no
 * Content-Length announced it, without reading the rest.
 */
import type { Server } from 'node:http';
import { request } from 'node:http';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRawBody } from '../../src/http/body.ts';
import { errorHandler } from '../../src/http/error-handler.ts';
import { createViews } from '../../src/http/views.ts';

const LIMIT = 1024;
let server: Server;
let port = 0;

beforeAll(async () => {
  const app = new Koa();
  app.silent = true;
  app.use(errorHandler({ views: createViews() }));
  app.use(async (ctx) => {
    const raw = await readRawBody(ctx, LIMIT);
    const again = await readRawBody(ctx, LIMIT); // cached on the state, not read twice
    ctx.body = { length: raw.length, sameObject: raw === again, hex: raw.toString('hex') };
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const a = server.address();
  port = typeof a === 'object' && a ? a.port : 0;
});
afterAll(() => {
  server.close();
});

/** Sends `chunks` with chunked transfer encoding (no Content-Length), a tick apart. */
function sendChunked(chunks: Buffer[]): Promise<{ status: number; connection: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers: { 'content-type': 'application/octet-stream', accept: 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
    });
    req.on('error', reject);
    let i = 0;
    const next = () => {
      if (i === chunks.length) return void req.end();
      req.write(chunks[i++], () => setImmediate(next));
    };
    next();
  });
}

describe('readRawBody', () => {
  it('When the body arrives in several chunks, then the bytes are joined intact and cached', async () => {
    const parts = [Buffer.from([0, 1, 2]), Buffer.from('中文', 'utf8'), Buffer.alloc(500, 0xff)];
    const r = await sendChunked(parts);
    expect(r.status).toBe(200);
    const got = JSON.parse(r.body) as { length: number; sameObject: boolean; hex: string };
    expect(got).toEqual({ length: 509, sameObject: true, hex: Buffer.concat(parts).toString('hex') });
  });

  it('When an unannounced body goes past the cap, then 413 with an RFC body and the connection closes', async () => {
    const r = await sendChunked([Buffer.alloc(600, 0x61), Buffer.alloc(600, 0x62), Buffer.alloc(600, 0x63)]);
    expect(r.status).toBe(413);
    expect(r.connection).toBe('close');
    expect(JSON.parse(r.body)).toMatchObject({ error: 'request.body_too_large' });
  });

  it('When Content-Length announces too much, then 413 before any byte is read', async () => {
    const r = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: Buffer.alloc(LIMIT + 1), headers: { accept: 'application/json' } });
    expect(r.status).toBe(413);
  });

  it('When the body is empty, then an empty buffer comes back', async () => {
    const r = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', headers: { accept: 'application/json' } });
    expect(await r.json()).toEqual({ length: 0, sameObject: true, hex: '' });
  });
});
