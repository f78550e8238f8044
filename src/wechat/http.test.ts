import fc from 'fast-check';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { WeChatApiError, WeChatTransportError } from './errors.ts';
import { createWeChatHttp, isBusy, parseJsonLossless, withBackoff, type FetchLike } from './http.ts';

function capture() {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) });
  return { logger, lines };
}

const json = (body: unknown, status = 200): Response =>
  new Response(typeof body === 'string' ? body : JSON.stringify(body), { status });

function httpWith(fetch: FetchLike, timeoutMs = 1_000) {
  const { logger, lines } = capture();
  return { http: createWeChatHttp({ baseUrl: 'http://wx.test/', fetch, timeoutMs, logger }), lines };
}

const schema = z.object({ access_token: z.string() });

const hasUnsafeInteger = (v: unknown): boolean =>
  typeof v === 'number'
    ? Number.isInteger(v) && !Number.isSafeInteger(v)
    : typeof v === 'object' && v !== null && Object.values(v).some(hasUnsafeInteger);

describe('parseJsonLossless (int64, §4.1)', () => {
  it('When msgid exceeds 2^53, then its digits survive exactly as a string', () => {
    const v = parseJsonLossless('{"errcode":0,"errmsg":"ok","msgid":3487542469355618313}') as Record<string, unknown>;
    expect(v.msgid).toBe('3487542469355618313');
    expect(v.errcode).toBe(0);
  });

  it('When a long digit run sits inside a string with escaped quotes, then the string is untouched', () => {
    const text = '{"errmsg":"a \\"12345678901234567890\\" b","n":-12345678901234567890,"f":1.5e300}';
    const v = parseJsonLossless(text) as Record<string, unknown>;
    expect(v.errmsg).toBe('a "12345678901234567890" b');
    expect(v.n).toBe('-12345678901234567890');
    expect(v.f).toBe(1.5e300);
  });

  it('When the JSON has no unsafe integer, then it parses exactly like JSON.parse', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        fc.pre(!hasUnsafeInteger(JSON.parse(text)));
        expect(parseJsonLossless(text)).toEqual(JSON.parse(text));
      }),
      { numRuns: 300 },
    );
  });

  it('When any int64 is embedded as a bare number, then it comes back as its exact decimal string', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 2n ** 53n, max: 2n ** 63n - 1n }), fc.string(), (n, s) => {
        const text = `{"s":${JSON.stringify(s)},"id":${n},"list":[${n}]}`;
        expect(parseJsonLossless(text)).toEqual({ s, id: n.toString(), list: [n.toString()] });
      }),
    );
  });
});

describe('createWeChatHttp', () => {
  it('When WeChat answers non-JSON, then a WeChatTransportError non_json comes out, ambiguous only for non-idempotent calls', async () => {
    const { http } = httpWith(async () => json('<html>502 gateway</html>'));
    const a = await http.call({ method: 'GET', path: '/cgi-bin/token', schema, idempotent: true }).catch((e) => e);
    expect(a).toBeInstanceOf(WeChatTransportError);
    expect(a).toMatchObject({ reason: 'non_json', ambiguous: false });
    const b = await http.call({ method: 'POST', path: '/send', body: {}, schema, idempotent: false }).catch((e) => e);
    expect(b).toMatchObject({ reason: 'non_json', ambiguous: true });
  });

  it('When WeChat never answers, then the call times out as a WeChatTransportError, ambiguous for a send', async () => {
    const never: FetchLike = () => new Promise(() => {}); // ignores its abort signal on purpose
    const { http } = httpWith(never, 30);
    const started = Date.now();
    const e = await http.call({ method: 'POST', path: '/send', body: {}, schema, idempotent: false }).catch((x) => x);
    expect(e).toMatchObject({ name: 'WeChatTransportError', reason: 'timeout', ambiguous: true });
    expect(Date.now() - started).toBeLessThan(1_000);
    const r = await http.call({ method: 'GET', path: '/read', schema, idempotent: true }).catch((x) => x);
    expect(r).toMatchObject({ reason: 'timeout', ambiguous: false });
  });

  it('When the connection is refused, then even a send is not ambiguous (nothing left this host)', async () => {
    const refused: FetchLike = async () => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }) });
    };
    const { http } = httpWith(refused);
    const e = await http.call({ method: 'POST', path: '/send', body: {}, schema, idempotent: false }).catch((x) => x);
    expect(e).toMatchObject({ reason: 'network', ambiguous: false });
    const reset: FetchLike = async () => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) });
    };
    const e2 = await httpWith(reset).http.call({ method: 'POST', path: '/send', body: {}, schema, idempotent: false }).catch((x) => x);
    expect(e2).toMatchObject({ reason: 'network', ambiguous: true });
  });

  it('When fetch fails quoting the URL, then the error carries no secret from the query', async () => {
    const leaky: FetchLike = async (url) => {
      throw new TypeError(`Failed to parse URL from ${url}`);
    };
    const e = await httpWith(leaky)
      .http.call({ method: 'GET', path: '/cgi-bin/token', query: { secret: 'LEAKYSECRET' }, schema, idempotent: true })
      .catch((x) => x);
    expect(e).toMatchObject({ reason: 'network' });
    expect(JSON.stringify({ m: e.message, c: String(e.cause), d: e })).not.toContain('LEAKYSECRET');
  });

  it('When the HTTP status is not 2xx, then http_status comes out; only a 5xx on a send is ambiguous', async () => {
    const e5 = await httpWith(async () => json({}, 502)).http.call({ method: 'POST', path: '/s', schema, idempotent: false }).catch((x) => x);
    expect(e5).toMatchObject({ reason: 'http_status', status: 502, ambiguous: true });
    const e4 = await httpWith(async () => json({}, 404)).http.call({ method: 'POST', path: '/s', schema, idempotent: false }).catch((x) => x);
    expect(e4).toMatchObject({ reason: 'http_status', status: 404, ambiguous: false });
  });

  it('When the body breaks the schema, then invalid_payload comes out without the body (it may hold a token)', async () => {
    const { http, lines } = httpWith(async () => json({ access_token: 12345, secret_stuff: 'TOPSECRETVALUE' }));
    const e = await http.call({ method: 'GET', path: '/cgi-bin/token', schema, idempotent: true }).catch((x) => x);
    expect(e).toMatchObject({ reason: 'invalid_payload', ambiguous: false });
    expect(e.message).toContain('access_token');
    expect(e.message).not.toContain('TOPSECRETVALUE');
    expect(lines.join('')).not.toContain('TOPSECRETVALUE');
  });

  it('When WeChat answers a non-zero errcode, then a WeChatApiError carries it with the endpoint path and a redacted errmsg', async () => {
    const { http, lines } = httpWith(async () => json({ errcode: 40125, errmsg: 'invalid appsecret s3cr3tvalue rid: 6a-1' }));
    const e = await http
      .call({ method: 'GET', path: '/cgi-bin/token', query: { secret: 's3cr3tvalue' }, secrets: ['s3cr3tvalue'], schema, idempotent: true })
      .catch((x) => x);
    expect(e).toBeInstanceOf(WeChatApiError);
    expect(e).toMatchObject({ errcode: 40125, kind: 'config', endpoint: '/cgi-bin/token' });
    expect(e.errmsg).toBe('invalid appsecret [redacted] rid: 6a-1');
    expect(lines.join('')).not.toContain('s3cr3tvalue');
  });

  it('When a call succeeds, then the URL joins base, path and query and the logs hold no query string', async () => {
    const seen: string[] = [];
    const { http, lines } = httpWith(async (url) => {
      seen.push(url);
      return json({ access_token: 'TOKENVALUE' });
    });
    const r = await http.call({
      method: 'GET',
      path: '/cgi-bin/token',
      query: { appid: 'wx1', secret: 'SECRETVALUE', skip: undefined },
      schema,
      idempotent: true,
    });
    expect(r.access_token).toBe('TOKENVALUE');
    expect(seen).toEqual(['http://wx.test/cgi-bin/token?appid=wx1&secret=SECRETVALUE']);
    const log = lines.join('');
    expect(log).toContain('/cgi-bin/token');
    expect(log).not.toMatch(/SECRETVALUE|TOKENVALUE/);
  });

  it('When a POST body has Chinese text, then it is sent as raw UTF-8, not \\u escapes (40033)', async () => {
    let sent = '';
    const { http } = httpWith(async (_url, init) => {
      sent = String(init.body);
      return json({ errcode: 0, errmsg: 'ok' });
    });
    await http.call({ method: 'POST', path: '/x', body: { content: '绑定 账号' }, schema: z.object({}), idempotent: false });
    expect(sent).toBe('{"content":"绑定 账号"}');
  });
});

describe('withBackoff (SECURITY.md D4)', () => {
  it('When WeChat stays busy, then it retries with full-jitter delays capped, and gives up after the attempts', async () => {
    const delays: number[] = [];
    let calls = 0;
    const e = await withBackoff(
      async () => {
        calls++;
        throw new WeChatApiError(-1, 'system error', '/x');
      },
      isBusy,
      { attempts: 4, baseMs: 200, capMs: 500, sleep: async (ms) => void delays.push(ms), random: () => 0.999 },
    ).catch((x) => x);
    expect(calls).toBe(4);
    expect(e.kind).toBe('busy');
    expect(delays).toEqual([199, 399, 499]);
  });

  it('When the error is not busy, then there is no retry', async () => {
    let calls = 0;
    await withBackoff(
      async () => {
        calls++;
        throw new WeChatApiError(45009, 'quota', '/x');
      },
      isBusy,
      { attempts: 5, baseMs: 1, capMs: 1 },
    ).catch(() => undefined);
    expect(calls).toBe(1);
  });
});
