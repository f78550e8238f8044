/**
 * Fuzzing the end-user cookie codec (src/http/cookies.ts policy, src/linking/web-session.ts:
 * Koa's signed cookies with the key derived from BRIDGE_SECRET_KEY; SECURITY.md A7) and the
 * login `state` it binds to, with the time and output-size oracles. The browser id and the
 * session id are only ever read from a cookie whose signature is ours for exactly that
 * value: any mutation of a genuine pair, a signature moved to another value, or junk, reads
 * as absent, never as an exception, and a forged session id is never even looked up.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import fc from 'fast-check';
import Koa, { type Context } from 'koa';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AppConfig } from '../../src/config/index.ts';
import { createCookiePolicy } from '../../src/http/cookies.ts';
import { createLoginFlowService } from '../../src/linking/login-flow.service.ts';
import type { BindingsService } from '../../src/linking/bindings.service.ts';
import { createSessionsService } from '../../src/linking/sessions.service.ts';
import { createWebSession } from '../../src/linking/web-session.routes.ts';
import { createSecretBox } from '../../src/security/secret-box.ts';
import { randomId } from '../../src/security/secrets.ts';
import { createMemoryKv } from '../../src/store/kv-memory.ts';
import type { Kv } from '../../src/store/kv.ts';
import type { WebAuthClient } from '../../src/wechat/index.ts';
import { TEST_SECRET_KEY } from '../helpers/app.ts';
import { RUNS, underOracle, underOracleAsync, type OracleStats } from './oracles.ts';

const koa = new Koa();
// Behind the TLS-terminating proxy of an https deployment (so the `__Host-` names and Secure apply).
koa.proxy = true;
koa.keys = [createSecretBox(Buffer.from(TEST_SECRET_KEY, 'hex')).deriveKey('cookies').toString('base64url')];
const policy = createCookiePolicy('https://bridge.bank.example');

/** A real Koa context (real `cookies`, real keys) for one request with this Cookie header. */
function contextWith(cookie: string): Context {
  const req = new IncomingMessage(new Socket());
  req.headers = { cookie, host: 'bridge.bank.example', 'x-forwarded-proto': 'https' };
  return koa.createContext(req, new ServerResponse(req));
}

/** What our own Set-Cookie would carry: `name=value; name.sig=…` for a value we signed. */
function signedPair(name: string, value: string): string {
  const ctx = contextWith('');
  ctx.cookies.set(name, value, policy.options({ sameSite: 'lax' }));
  const set = ctx.response.headers['set-cookie'] as string[];
  return set.map((c) => c.split(';')[0]).join('; ');
}

const mutate = (s: string, i: number, c: string) => s.slice(0, i % (s.length + 1)) + c + s.slice((i % (s.length + 1)) + 1);
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

describe('fuzz: signed end-user cookies', () => {
  const lookups: string[] = [];
  const countingKv = (inner: Kv): Kv => ({
    ...inner,
    get: (key) => {
      lookups.push(key);
      return inner.get(key);
    },
  });
  const web = createWebSession({ cookies: policy, sessions: createSessionsService({ kv: countingKv(createMemoryKv()) }), sessionMaxAgeMs: 60_000 });
  const fb = policy.name('wxb_fb');
  const sess = policy.name('wxb_sess');
  const genuine = Array.from({ length: 8 }, () => randomId(24));
  const pairs = genuine.map((id) => signedPair(fb, id));

  const headers = fc.oneof(
    fc.string({ maxLength: 400 }),
    fc.string({ unit: 'binary', maxLength: 200 }),
    // One byte of a genuine pair changed (value or signature), at any place.
    fc.tuple(fc.constantFrom(...pairs), fc.nat(200), fc.constantFrom(...B64URL.split(''), ';', '=', ' ', '"', '%', '\u0000')).map(([p, i, c]) => mutate(p, i, c)),
    // A genuine signature moved onto another value, or the two cookies reordered/duplicated.
    fc.tuple(fc.nat(7), fc.nat(7), fc.string({ maxLength: 40 })).map(([a, b, junk]) => `${fb}=${genuine[a]}${junk}; ${pairs[b]!.split('; ')[1]}`),
    fc.tuple(fc.nat(7), fc.nat(7)).map(([a, b]) => `${pairs[a]}; ${pairs[b]}`),
    fc.tuple(fc.nat(7), fc.nat(2000)).map(([a, n]) => `${'x=1; '.repeat(n)}${pairs[a]}`),
  );

  it('When any Cookie header arrives, then the browser id is absent or a value we signed, in under 50 ms, never bigger than the header', () => {
    const stats: OracleStats = { worstMs: 0, inputs: 0 };
    let accepted = 0;
    fc.assert(
      fc.property(headers, (header) => {
        const out = underOracle(stats, header, () => web.browserId(contextWith(header), false), []);
        if (out === undefined) return;
        if (out instanceof Error) throw out;
        accepted++;
        expect(genuine).toContain(out);
        expect(out.length).toBeLessThanOrEqual(header.length);
        // Accepted only with the very pair we issued for it in the header.
        expect(header).toContain(pairs[genuine.indexOf(out)]!.split('; ')[1]);
      }),
      { numRuns: RUNS * 2 },
    );
    expect(stats.inputs).toBeGreaterThanOrEqual(RUNS * 2);
    expect(accepted).toBeGreaterThan(0);
  });

  it('When the session cookie is forged or mutated, then the session reads as absent and the Kv is never asked', async () => {
    const stats: OracleStats = { worstMs: 0, inputs: 0 };
    const sid = randomId(32);
    const pair = signedPair(sess, sid);
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.tuple(fc.nat(pair.length), fc.constantFrom(...B64URL.split(''), ';', ' ')).map(([i, c]) => mutate(pair, i, c)), fc.string({ maxLength: 200 }).map((s) => `${sess}=${s}; ${sess}.sig=${s}`)), async (header) => {
        fc.pre(header !== pair);
        lookups.length = 0;
        const out = await underOracleAsync(stats, header, () => web.read(contextWith(header)), []);
        const value = contextWith(header).cookies.get(sess, { signed: true });
        if (value === sid) return; // a mutation that left our exact pair intact (e.g. after it)
        expect(out).toBeNull();
        expect(lookups).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: the login `state` coming back from WeChat', () => {
  const kv = createMemoryKv();
  let exchanges = 0;
  const webAuth = {
    authorizeUrl: (p: { state: string }) => `https://wx.example/authorize?state=${p.state}`,
    exchangeCode: async () => {
      exchanges++;
      throw new Error('never reached: no state of ours is guessed');
    },
  } as unknown as WebAuthClient;
  const flow = createLoginFlowService({
    config: { publicUrl: 'https://bridge.example', officialAccounts: [{ id: 'oa', appId: 'wx00000000000000oa', appSecret: 's' }], wechat: { oauthBaseUrl: 'https://open.weixin.qq.com', apiBaseUrl: '' } } as unknown as AppConfig,
    merchant: (id) => (id === 'm' ? ({ id: 'm', officialAccount: 'oa', profile: 'base' } as never) : undefined),
    kv,
    webAuth,
    bindings: {} as BindingsService,
    sessions: createSessionsService({ kv }),
    log: pino({ level: 'silent' }),
    now: Date.now,
  });

  it('When the callback brings any state and code but ours, then the outcome is `expired`/`code_spent` or a browser mismatch, fast, with no exchange', async () => {
    const real = new URL(await flow.start({ merchantId: 'm', next: '/x', browserId: 'b1' })).searchParams.get('state')!;
    const stats: OracleStats = { worstMs: 0, inputs: 0 };
    const states = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.stringMatching(/^[A-Za-z0-9]{1,128}$/),
      fc.tuple(fc.nat(real.length - 1), fc.constantFrom(...B64URL.split(''))).map(([i, c]) => mutate(real, i, c)),
      fc.constant(`${real}x`),
      fc.constant(real.slice(0, -1)),
    );
    await fc.assert(
      fc.asyncProperty(states, fc.oneof(fc.string({ maxLength: 300 }), fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/)), async (state, code) => {
        fc.pre(state !== real);
        const out = await underOracleAsync(stats, { state, code }, () => flow.callback({ oa: 'oa', code, state, browserId: 'b1' }), []);
        if (out instanceof Error) throw out;
        expect(out.kind).toBe('error');
        expect(['expired', 'code_spent']).toContain((out as { reason: string }).reason);
      }),
      { numRuns: RUNS },
    );
    expect(exchanges).toBe(0);
    // The real state is still there, single use, for the right browser only.
    expect(await flow.callback({ oa: 'oa', code: 'c-1', state: real, browserId: 'other' })).toMatchObject({ reason: 'cross_browser' });
    expect(await flow.callback({ oa: 'oa', code: 'c-2', state: real, browserId: 'b1' })).toMatchObject({ reason: 'expired' });
  });
});
