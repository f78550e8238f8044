/**
 * Single use under random interleavings (SECURITY.md A1, D5; RFC 6749 §10.5, RFC 9700 §4.2.4):
 * the login `state` and the authorization code, each consumed from two app instances (two
 * Kv clients of one Redis, or one shared store) at random moments, with WeChat's double
 * redirect and replays mixed in. Whatever the order: exactly one winner — one code exchange,
 * one session, one issued token family. Each property is also run against a store whose
 * single-use primitive is read-then-delete, and must fail there: it can catch the bug.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppConfig } from '../../src/config/index.ts';
import type { BindingsService } from '../../src/linking/bindings.service.ts';
import { createLoginFlowService, type CallbackOutcome } from '../../src/linking/login-flow.service.ts';
import { createSessionsService } from '../../src/linking/sessions.service.ts';
import { createCodesService, type CodeRecord } from '../../src/oauth/codes.service.ts';
import type { Kv } from '../../src/store/kv.ts';
import type { CodeExchangeResult, WebAuthClient } from '../../src/wechat/index.ts';
import { kvPairs, nonAtomic, sleep, type KvPair } from './kv-pairs.ts';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 40);
const OA = { id: 'oa', appId: 'wx00000000000000oa', appSecret: 'oa-secret-123' };
const config = { publicUrl: 'https://bridge.example', officialAccounts: [OA], wechat: { oauthBaseUrl: 'https://open.weixin.qq.com', apiBaseUrl: '' } } as unknown as AppConfig;

let pairs: KvPair[];
beforeAll(async () => {
  pairs = await kvPairs();
});
afterAll(async () => {
  for (const p of pairs) await p.close();
});

/** One app instance's login flow on its own Kv client; WeChat's exchange is counted. */
function instance(kv: Kv, exchanges: string[]) {
  const tokens: CodeExchangeResult = { openid: 'o-1', scopes: ['snsapi_base'], accessToken: 'at', refreshToken: 'rt', expiresIn: 7200, isSnapshotUser: false };
  const webAuth = {
    authorizeUrl: (p: { state: string }) => `https://open.weixin.qq.com/connect/oauth2/authorize?state=${p.state}`,
    exchangeCode: async (p: { code: string }) => {
      exchanges.push(p.code);
      await sleep(2);
      return tokens;
    },
  } as unknown as WebAuthClient;
  const bindings = { upsertFromLogin: async () => ({ id: 'identity-1', nickname: null }) } as unknown as BindingsService;
  return createLoginFlowService({
    config,
    merchant: (id) => (id === 'm' ? ({ id: 'm', officialAccount: 'oa', profile: 'base' } as never) : undefined),
    kv,
    webAuth,
    bindings,
    sessions: createSessionsService({ kv }),
    log: pino({ level: 'silent' }),
    now: Date.now,
    duplicateWaitMs: 3_000,
  });
}

/** A callback: on which instance, with which of the codes WeChat handed out, after how long. */
const callbacks = fc.array(fc.record({ on: fc.constantFrom('a', 'b'), code: fc.nat(2), delayMs: fc.nat(6) }), { minLength: 2, maxLength: 7 });

function loginProperty(a: Kv, b: Kv) {
  return fc.asyncProperty(callbacks, async (calls) => {
    // Codes are WeChat's, fresh per flow (a shrunk counterexample must not reuse an old one).
    const salt = randomBytes(6).toString('hex');
    const exchanges: string[] = [];
    const flows = { a: instance(a, exchanges), b: instance(b, exchanges) };
    const url = await flows.a.start({ merchantId: 'm', next: '/x', browserId: 'browser-1' });
    const state = new URL(url).searchParams.get('state')!;
    const outcomes: CallbackOutcome[] = await Promise.all(
      calls.map(async (c) => {
        await sleep(c.delayMs);
        return flows[c.on as 'a' | 'b'].callback({ oa: 'oa', code: `code${salt}x${c.code}`, state, browserId: 'browser-1' });
      }),
    );
    const sessions = new Set(outcomes.flatMap((o) => (o.kind === 'ok' ? [o.sessionId] : [])));
    // Exactly one winner: one exchange with WeChat, one session, every other callback refused.
    expect(exchanges).toHaveLength(1);
    expect(sessions.size).toBe(1);
    for (const o of outcomes) if (o.kind !== 'ok') expect(o).toMatchObject({ kind: 'error', reason: 'expired' });
    // Replays of the winning code (double redirect) see the winner's outcome; other codes never do.
    const winner = exchanges[0];
    calls.forEach((c, i) => expect(outcomes[i]!.kind === 'ok').toBe(`code${salt}x${c.code}` === winner));
  });
}

const record = (jti: string): CodeRecord => ({
  clientId: 'card-h5',
  redirectUri: 'https://h5.card.example/cb',
  codeChallenge: 'x'.repeat(43),
  scopes: ['openid'],
  identityId: 'i',
  bindingId: 'b',
  authTime: 0,
  amr: ['wechat'],
  expiresAt: Date.now() + 60_000,
  jti,
  familyId: jti,
});

function codeProperty(a: Kv, b: Kv) {
  return fc.asyncProperty(fc.array(fc.record({ on: fc.constantFrom('a', 'b'), delayMs: fc.nat(4) }), { minLength: 2, maxLength: 8 }), async (attempts) => {
    const services = { a: createCodesService({ kv: a, now: Date.now }), b: createCodesService({ kv: b, now: Date.now }) };
    const code = await services.a.issue(record('unused'));
    const won = await Promise.all(
      attempts.map(async (x, i) => {
        await sleep(x.delayMs);
        return services[x.on as 'a' | 'b'].consume(code, record(`jti-${i}`), 0);
      }),
    );
    expect(won.filter(Boolean)).toHaveLength(1);
    // The marker names the winner's token, so a replay revokes exactly what was issued.
    const used = await services.b.used(code);
    expect(used?.jti).toBe(`jti-${won.indexOf(true)}`);
    expect(await services.a.load(code)).toBeNull();
  });
}

describe('property: single use across two instances', () => {
  it('When callbacks for one login state land on two instances in any order, with any mix of codes and replays, then exactly one exchange and one session', async () => {
    for (const p of pairs) await fc.assert(loginProperty(p.a, p.b), { numRuns: RUNS });
  });

  it('When one authorization code is consumed from two instances in any order, then exactly one consume wins and the marker names its token', async () => {
    for (const p of pairs) await fc.assert(codeProperty(p.a, p.b), { numRuns: RUNS });
  });

  it('When the single-use primitives are made non-atomic (read, then delete), then both properties find a second winner', async () => {
    const p = pairs[pairs.length - 1]!;
    const login = await fc.check(loginProperty(nonAtomic(p.a), nonAtomic(p.b)), { numRuns: RUNS });
    const code = await fc.check(codeProperty(nonAtomic(p.a), nonAtomic(p.b)), { numRuns: RUNS });
    expect(login.failed).toBe(true);
    expect(code.failed).toBe(true);
  });
});
