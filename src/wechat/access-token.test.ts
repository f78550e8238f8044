import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../http/errors.ts';
import { keyspace } from '../store/keyspace.ts';
import { createMemoryKv } from '../store/kv-memory.ts';
import type { Kv } from '../store/kv.ts';
import { createAccessTokenManager, type AccessTokenManagerOptions } from './access-token.ts';
import { WeChatApiError } from './errors.ts';
import type { FetchLike } from './http.ts';

const silent = pino({ level: 'silent' });
const SECRET = '0123456789abcdef0123456789abcdef';

interface Call {
  path: string;
  method: string;
  query: URLSearchParams;
  body: Record<string, unknown> | undefined;
}

/** A token endpoint that mints tok-1, tok-2, … after `delayMs`, or answers `next()`'s override. */
function fakeTokenEndpoint(opts: { delayMs?: number; answer?: (n: number) => unknown; expiresIn?: number } = {}) {
  const calls: Call[] = [];
  const fetch: FetchLike = async (input, init) => {
    const url = new URL(input);
    calls.push({
      path: url.pathname,
      method: init.method ?? 'GET',
      query: url.searchParams,
      body: init.body ? JSON.parse(String(init.body)) : undefined,
    });
    const n = calls.length;
    if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
    const body = opts.answer?.(n) ?? { access_token: `tok-${n}`, expires_in: opts.expiresIn ?? 7200 };
    return new Response(JSON.stringify(body), { status: 200 });
  };
  return { fetch, calls };
}

function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

function manager(kv: Kv, fetch: FetchLike, now: () => number, extra: Partial<AccessTokenManagerOptions> = {}) {
  return createAccessTokenManager({
    kv,
    fetch,
    now,
    apiBaseUrl: 'http://wx.test',
    logger: silent,
    accounts: (appId) => (appId.startsWith('wx') ? { appSecret: SECRET, method: appId.endsWith('classic') ? 'classic' : 'stable' } : undefined),
    pollMs: 2,
    random: () => 0,
    ...extra,
  });
}

describe('access token manager (§2, SECURITY.md D3)', () => {
  it('When 3 managers share one Kv and 50 callers each ask at once, then WeChat is asked once and all get the same token', async () => {
    const c = clock();
    const kv = createMemoryKv({ now: c.now });
    const wx = fakeTokenEndpoint({ delayMs: 20 });
    const managers = [1, 2, 3].map(() => manager(kv, wx.fetch, c.now));
    const tokens = await Promise.all(managers.flatMap((m) => Array.from({ length: 50 }, () => m.get('wxA'))));
    expect(new Set(tokens)).toEqual(new Set(['tok-1']));
    expect(wx.calls).toHaveLength(1);
  });

  it('When the default method is used, then it POSTs stable_token in normal mode, never force_refresh', async () => {
    const c = clock();
    const wx = fakeTokenEndpoint();
    const m = manager(createMemoryKv({ now: c.now }), wx.fetch, c.now);
    await m.get('wxA');
    expect(wx.calls[0]).toMatchObject({ path: '/cgi-bin/stable_token', method: 'POST' });
    expect(wx.calls[0]!.body).toEqual({ grant_type: 'client_credential', appid: 'wxA', secret: SECRET, force_refresh: false });
    expect([...wx.calls[0]!.query.keys()]).toEqual([]);
  });

  it('When the classic method is chosen, then it GETs cgi-bin/token with the credentials in the query', async () => {
    const c = clock();
    const wx = fakeTokenEndpoint();
    await manager(createMemoryKv({ now: c.now }), wx.fetch, c.now).get('wxA-classic');
    expect(wx.calls[0]).toMatchObject({ path: '/cgi-bin/token', method: 'GET' });
    expect(wx.calls[0]!.query.get('grant_type')).toBe('client_credential');
    expect(wx.calls[0]!.query.get('secret')).toBe(SECRET);
  });

  it('When a token is cached, then later gets use it until 5 min before expiry, then exactly one caller renews', async () => {
    const c = clock();
    const kv = createMemoryKv({ now: c.now });
    const wx = fakeTokenEndpoint();
    const a = manager(kv, wx.fetch, c.now);
    const b = manager(kv, wx.fetch, c.now);
    expect(await a.get('wxA')).toBe('tok-1');
    c.advance(3_600_000);
    expect(await b.get('wxA')).toBe('tok-1');
    expect(wx.calls).toHaveLength(1);
    c.advance(7200_000 - 3_600_000 - 4 * 60_000); // 4 min left
    const [a1, b1, a2] = await Promise.all([a.get('wxA'), b.get('wxA'), a.get('wxA')]);
    expect(wx.calls).toHaveLength(2);
    expect([a1, a2]).toEqual(['tok-2', 'tok-2']);
    // b lost the lock race and kept serving the old token, which is valid to its end (§2.2).
    expect(['tok-1', 'tok-2']).toContain(b1);
    expect((await a.peek('wxA'))?.expiresAt).toBe(c.now() + 7200_000);
    c.advance(5_000);
    expect(await b.get('wxA')).toBe('tok-2');
    expect(wx.calls).toHaveLength(2);
  });

  it('When another instance holds the lock during an early refresh, then the still-valid token is served without waiting', async () => {
    const c = clock();
    const kv = createMemoryKv({ now: c.now });
    const wx = fakeTokenEndpoint();
    const m = manager(kv, wx.fetch, c.now);
    await m.get('wxA');
    c.advance(7200_000 - 60_000);
    const held = await kv.tryLock(keyspace.wechat.accessTokenLock('wxA'), 60_000);
    expect(held).not.toBeNull();
    expect(await m.get('wxA')).toBe('tok-1');
    expect(wx.calls).toHaveLength(1);
  });

  it('When 50 callers report the same bad token, then one fetch replaces it and all get the new token', async () => {
    const c = clock();
    const kv = createMemoryKv({ now: c.now });
    const wx = fakeTokenEndpoint({ delayMs: 10 });
    const managers = [manager(kv, wx.fetch, c.now), manager(kv, wx.fetch, c.now)];
    const bad = await managers[0]!.get('wxA');
    c.advance(1_000);
    const fresh = await Promise.all(managers.flatMap((m) => Array.from({ length: 25 }, () => m.refresh('wxA', bad))));
    expect(new Set(fresh)).toEqual(new Set(['tok-2']));
    expect(wx.calls).toHaveLength(2);
    // A late report of the old token after the swap costs nothing.
    expect(await managers[1]!.refresh('wxA', bad)).toBe('tok-2');
    expect(await managers[0]!.get('wxA')).toBe('tok-2');
    expect(wx.calls).toHaveLength(2);
  });

  it('When WeChat hands back the same stable token after a 40001, then later reports of it do not refetch for a while', async () => {
    const c = clock();
    const kv = createMemoryKv({ now: c.now });
    const wx = fakeTokenEndpoint({ answer: () => ({ access_token: 'same', expires_in: 7200 }) });
    const m = manager(kv, wx.fetch, c.now);
    await m.get('wxA');
    c.advance(60_000);
    expect(await m.refresh('wxA', 'same')).toBe('same');
    expect(wx.calls).toHaveLength(2);
    c.advance(2_000);
    expect(await manager(kv, wx.fetch, c.now).refresh('wxA', 'same')).toBe('same');
    expect(wx.calls).toHaveLength(2);
    c.advance(10_000);
    await m.refresh('wxA', 'same');
    expect(wx.calls).toHaveLength(3);
  });

  it('When the token endpoint answers 45009, then a quota error surfaces and is not refetched in a loop', async () => {
    const c = clock();
    const kv = createMemoryKv({ now: c.now });
    const wx = fakeTokenEndpoint({ answer: () => ({ errcode: 45009, errmsg: 'reach max api daily quota limit rid: 1' }) });
    const ms = [manager(kv, wx.fetch, c.now), manager(kv, wx.fetch, c.now)];
    for (let i = 0; i < 10; i++) {
      const e = await ms[i % 2]!.get('wxA').catch((x) => x);
      expect(e).toBeInstanceOf(WeChatApiError);
      expect(e).toMatchObject({ errcode: 45009, kind: 'quota_daily', policy: 'Q' });
    }
    expect(wx.calls).toHaveLength(1);
  });

  it.each([
    [40125, 'config'],
    [40164, 'config'],
    [40001, 'config'],
    [40243, 'config'],
  ])('When the token endpoint answers %i, then it surfaces as %s once, without retries', async (errcode, kind) => {
    const c = clock();
    const wx = fakeTokenEndpoint({ answer: () => ({ errcode, errmsg: `e rid: x` }) });
    const m = manager(createMemoryKv({ now: c.now }), wx.fetch, c.now);
    await expect(m.get('wxA')).rejects.toMatchObject({ errcode, kind });
    expect(wx.calls).toHaveLength(1);
  });

  it('When the token endpoint is busy once, then one jittered retry fetches the token', async () => {
    const c = clock();
    const wx = fakeTokenEndpoint({ answer: (n) => (n === 1 ? { errcode: -1, errmsg: 'system error' } : undefined) });
    const m = manager(createMemoryKv({ now: c.now }), wx.fetch, c.now);
    expect(await m.get('wxA')).toBe('tok-2');
    expect(wx.calls).toHaveLength(2);
  });

  it('When the cached value is malformed, then it is ignored and refetched', async () => {
    const c = clock();
    const kv = createMemoryKv({ now: c.now });
    await kv.set(keyspace.wechat.accessToken('wxA'), '{"token":42}', 60_000);
    const wx = fakeTokenEndpoint();
    expect(await manager(kv, wx.fetch, c.now).get('wxA')).toBe('tok-1');
    expect(JSON.parse((await kv.get(keyspace.wechat.accessToken('wxA')))!)).toMatchObject({ token: 'tok-1' });
  });

  it('When the lock holder never finishes, then a waiter gives up with 503 instead of fetching or hanging', async () => {
    const c = clock();
    const kv = createMemoryKv({ now: c.now });
    await kv.tryLock(keyspace.wechat.accessTokenLock('wxA'), 60_000);
    const wx = fakeTokenEndpoint();
    const m = manager(kv, wx.fetch, c.now, { waitMs: 30 });
    await expect(m.get('wxA')).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(wx.calls).toHaveLength(0);
  });

  it('When a token is in memory, then gets within a minute do not touch the Kv, and memory never outlives the token', async () => {
    const c = clock();
    const inner = createMemoryKv({ now: c.now });
    let reads = 0;
    const kv: Kv = { ...inner, get: (k) => (reads++, inner.get(k)) };
    const wx = fakeTokenEndpoint({ expiresIn: 40 });
    const m = manager(kv, wx.fetch, c.now, { refreshBeforeMs: 5_000 });
    await m.get('wxA');
    const after = reads;
    await m.get('wxA');
    expect(reads).toBe(after);
    c.advance(35_000); // 5 s left: inside the skew, unusable
    expect(await m.get('wxA')).toBe('tok-2');
  });

  it('When peeking, then lifetimes come back without the token; unknown accounts are refused', async () => {
    const c = clock();
    const wx = fakeTokenEndpoint();
    const m = manager(createMemoryKv({ now: c.now }), wx.fetch, c.now);
    expect(await m.peek('wxA')).toBeNull();
    await m.get('wxA');
    expect(await m.peek('wxA')).toEqual({ expiresAt: c.now() + 7200_000, fetchedAt: c.now() });
    await expect(m.get('nope')).rejects.toThrow(/no credentials/);
  });
});
