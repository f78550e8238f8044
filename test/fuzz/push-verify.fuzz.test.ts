/**
 * Fuzzing push verification as the route calls it (src/inbox/push-verify.ts; wechat-protocol.md
 * §5.3, §6.2; SECURITY.md A8, A9, B4): query and raw body together, plaintext and safe mode.
 * push.fuzz.test.ts fuzzes the parser, the cipher and the bare signature functions; this
 * target fuzzes the order of checks around them. Oracles: only AppError comes out, within
 * 50 ms; whatever is accepted carries a genuine signature over the exact timestamp/nonce (and
 * Encrypt) we signed and is the message we sent; the result is never bigger than the body.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEMO_ACCOUNT } from '../../src/config/demo.ts';
import type { OfficialAccountConfig } from '../../src/config/index.ts';
import { officialAccountSchema } from '../../src/config/schema.ts';
import { AppError } from '../../src/http/errors.ts';
import { createPushVerifier, type VerifiedPush } from '../../src/inbox/push-verify.ts';
import { createMessageCipher, encryptedEnvelope, sha1Sorted } from '../../src/wechat/crypto.ts';
import { buildWeChatXml } from '../../src/wechat/xml.ts';
import { jsonSize, RUNS, underOracle, type OracleStats } from './oracles.ts';

const NOW_S = 1_700_000_000;
// The demo account as the config loader makes it (its defaults included), without and with its key.
const { encodingAesKey: KEY, ...demo } = DEMO_ACCOUNT;
const plain: OfficialAccountConfig = officialAccountSchema.parse(demo);
const safe: OfficialAccountConfig = { ...plain, encodingAesKey: KEY };
const verifier = createPushVerifier({ now: () => NOW_S * 1000 });
const cipher = createMessageCipher({ appId: plain.appId, encodingAesKeys: [KEY] });
const OPENID = 'oBridgeTestUser0000000000001';

const xml = buildWeChatXml({ ToUserName: plain.originalId, FromUserName: OPENID, CreateTime: NOW_S, MsgType: 'text', Content: '绑定 123456', MsgId: 24312345678901234n });

type Query = Record<string, string>;
interface Genuine {
  account: OfficialAccountConfig;
  query: Query;
  body: string;
}

function signed(timestamp: string, nonce: string): Genuine[] {
  const signature = sha1Sorted(plain.token, timestamp, nonce);
  const encrypt = cipher.encrypt(xml);
  return [
    { account: plain, query: { signature, timestamp, nonce, openid: OPENID }, body: xml },
    {
      account: safe,
      query: { signature, timestamp, nonce, openid: OPENID, encrypt_type: 'aes', msg_signature: sha1Sorted(plain.token, timestamp, nonce, encrypt) },
      body: encryptedEnvelope({ encrypt, token: plain.token, timestamp, nonce }).replace('<xml>', `<xml><ToUserName><![CDATA[${plain.originalId}]]></ToUserName>`),
    },
  ];
}
const genuine = [...signed(String(NOW_S), '1320562453'), ...signed(String(NOW_S - 100), 'abcDEF123')];

const HEXISH = '0123456789abcdefABCDEF xg';
const mutateAt = (s: string, i: number, c: string) => s.slice(0, i % (s.length + 1)) + c + s.slice((i % (s.length + 1)) + 1);
const KEYS = ['signature', 'timestamp', 'nonce', 'openid', 'encrypt_type', 'msg_signature'];

/** A genuine push with one thing changed: a query value, a key dropped or doubled, a body byte, a spliced fragment. */
const mutated = fc
  .tuple(
    fc.constantFrom(...genuine),
    fc.constantFrom('query', 'drop', 'array', 'body', 'splice', 'none'),
    fc.constantFrom(...KEYS),
    fc.nat(4000),
    fc.constantFrom(...HEXISH.split(''), '<', '>', '&', '=', '+', '/', ']]>', '<Encrypt>', '</Encrypt>', '\u0000'),
  )
  .map(([g, how, key, i, c]) => {
    const query: Record<string, unknown> = { ...g.query };
    let body = g.body;
    if (how === 'query' && query[key] !== undefined) query[key] = mutateAt(String(query[key]), i, c);
    if (how === 'drop') delete query[key];
    if (how === 'array' && query[key] !== undefined) query[key] = [query[key], query[key]];
    if (how === 'body') body = mutateAt(body, i, c);
    if (how === 'splice') body = body.slice(0, i % body.length) + c + body.slice(i % body.length);
    return { g, query, body };
  });

const junk = fc.record({
  query: fc.dictionary(fc.constantFrom(...KEYS, 'echostr', 'x'), fc.oneof(fc.string({ maxLength: 80 }), fc.stringMatching(/^[0-9a-f]{40}$/), fc.stringMatching(/^\d{10}$/))),
  body: fc.oneof(fc.string({ maxLength: 3000 }), fc.string({ maxLength: 200 }).map((s) => `<xml><Encrypt><![CDATA[${s}]]></Encrypt></xml>`)),
  safeMode: fc.boolean(),
});

function verify(account: OfficialAccountConfig, query: unknown, body: string): VerifiedPush | Error {
  return underOracle(statsAll, { query, body: body.slice(0, 120) }, () => verifier.verifyPush(account, query, Buffer.from(body)), [AppError]);
}
const statsAll: OracleStats = { worstMs: 0, inputs: 0 };

describe('fuzz: push verification (query + raw body)', () => {
  it('When a genuine push is changed in any one place, then it is refused with an AppError (4xx), fast, unless the change is outside what is signed and the message is unchanged', () => {
    let refused = 0;
    fc.assert(
      fc.property(mutated, ({ g, query, body }) => {
        const out = verify(g.account, query, body);
        if (out instanceof Error) {
          refused++;
          expect([400, 403]).toContain((out as AppError).status);
          return;
        }
        // Accepted: the signed parts are the genuine ones, and so is the message.
        for (const k of ['signature', 'timestamp', 'nonce', ...(g.account.encodingAesKey ? ['msg_signature'] : [])]) expect(query[k]).toBe(g.query[k]);
        expect(out.message.ToUserName).toBe(plain.originalId);
        expect(jsonSize(out.message)).toBeLessThanOrEqual(Buffer.byteLength(body) * 2);
        if (g.account.encodingAesKey || body === g.body) expect(out.message).toMatchObject({ FromUserName: OPENID, Content: '绑定 123456' });
        // A plaintext body is not covered by `signature` (§5.3): the replay guard binds the
        // signature to this exact body, so a captured signature cannot carry another one twice.
        else expect(out.replayGuard).toEqual({ signature: query.signature, bodyHash: createHash('sha256').update(body).digest('base64url') });
      }),
      { numRuns: RUNS * 2 },
    );
    expect(refused).toBeGreaterThan(RUNS / 2);
  });

  it('When the query and body are arbitrary, then it is refused with an AppError in under 50 ms', () => {
    fc.assert(
      fc.property(junk, ({ query, body, safeMode }) => {
        const out = verify(safeMode ? safe : plain, query, body);
        expect(out).toBeInstanceOf(AppError);
      }),
      { numRuns: RUNS },
    );
  });

  it('When a push is genuinely signed at any moment, then it is accepted only within 300 s of our clock (a captured push does not replay forever)', () => {
    let stale = 0;
    fc.assert(
      fc.property(fc.integer({ min: -100_000, max: 100_000 }), fc.boolean(), (offset, encrypted) => {
        const g = signed(String(NOW_S + offset), 'n0nce')[encrypted ? 1 : 0]!;
        const out = verify(g.account, g.query, g.body);
        if (Math.abs(offset) > 300) {
          stale++;
          expect(out).toBeInstanceOf(AppError);
          expect((out as AppError).status).toBe(403);
        } else expect(out).not.toBeInstanceOf(Error);
      }),
      { numRuns: RUNS },
    );
    expect(stale).toBeGreaterThan(0);
  });

  it('When the genuine pushes are offered unchanged, then each is accepted (the generators reach the accepting side)', () => {
    for (const g of genuine) expect(verify(g.account, g.query, g.body)).not.toBeInstanceOf(Error);
    expect(statsAll.worstMs).toBeLessThan(50);
  });
});
