/**
 * Fuzzing the push path's parsers: the hardened XML parser, the message decryptor and
 * the signature checks, with time-per-input and output-size oracles (SECURITY.md B4,
 * T13). Inputs: arbitrary strings, mutations of real pushes, and structured hostile
 * shapes (entities, nesting, floods).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createMessageCipher, CryptoError, verifyMsgSignature, verifySignature } from '../../src/wechat/crypto.ts';
import { InboundMessageError, parseInboundMessage } from '../../src/wechat/messages.ts';
import { buildWeChatXml, parseWeChatXml, XmlError } from '../../src/wechat/xml.ts';
import { jsonSize, RUNS, underOracle, type OracleStats } from './oracles.ts';

const KEY = 'Wx2bR7kLm9QpZ3vN8sT1uY4cF6hJ0dG5aE2iK7oP3qA';
const APPID = 'wx1234567890abcdef';
const cipher = createMessageCipher({ appId: APPID, encodingAesKeys: [KEY] });

const realPush = buildWeChatXml({
  ToUserName: 'gh_0123456789ab',
  FromUserName: 'oBridgeTestUser0000000000001',
  CreateTime: 1700000000,
  MsgType: 'text',
  Content: '绑定 账号',
  MsgId: 24312345678901234n,
});

/** Mutations of a valid push: cut, duplicate, splice hostile fragments in. */
const fragments = ['<!DOCTYPE x [<!ENTITY a "aaaa">]>', '&a;', '&#x41;', '<![CDATA[', ']]>', '<x>', '</x>', '<xml>', '</xml>', '<?xml version="1.0"?>', '<!--', '-->', '\u0000', '&lt;', '<a b="c">'];
const mutated = fc
  .tuple(fc.nat(realPush.length), fc.nat(realPush.length), fc.array(fc.constantFrom(...fragments), { maxLength: 6 }), fc.nat(50))
  .map(([a, b, frags, rep]) => {
    const [i, j] = a < b ? [a, b] : [b, a];
    const middle = frags.join('').repeat(1 + (rep % 5));
    return realPush.slice(0, i) + middle + realPush.slice(j);
  });

const nested = fc.tuple(fc.nat(3000), fc.constantFrom('a', 'Content', 'item')).map(([d, tag]) => `<xml>${`<${tag}>`.repeat(d)}x${`</${tag}>`.repeat(d)}</xml>`);
const flood = fc.tuple(fc.nat(20_000), fc.constantFrom('<a/>', '&#65;', '<b>1</b>', '<![CDATA[x]]>')).map(([n, unit]) => `<xml>${unit.repeat(n)}</xml>`);

describe('fuzz: hardened XML parser (T12/T13)', () => {
  it('When any input is parsed, then it returns or throws XmlError within 50 ms and never returns more than it read', () => {
    const stats: OracleStats = { worstMs: 0, inputs: 0 };
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 2000 }), fc.string({ unit: 'grapheme', maxLength: 500 }), mutated, nested, flood), (input) => {
        const out = underOracle(stats, input, () => parseWeChatXml(input), [XmlError]);
        if (!(out instanceof Error)) expect(jsonSize(out)).toBeLessThanOrEqual(Buffer.byteLength(input) * 2 + 16);
      }),
      { numRuns: RUNS },
    );
    expect(stats.inputs).toBeGreaterThanOrEqual(RUNS);
  });

  it('When a parsed push goes through the message schema, then it is typed or refused with InboundMessageError', () => {
    const stats: OracleStats = { worstMs: 0, inputs: 0 };
    fc.assert(
      fc.property(mutated, (input) => {
        let fields: Record<string, unknown>;
        try {
          fields = parseWeChatXml(input);
        } catch {
          return;
        }
        underOracle(stats, input, () => parseInboundMessage(fields), [InboundMessageError]);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: message decryptor and signatures', () => {
  it('When arbitrary ciphertext is decrypted, then only CryptoError comes out, fast, and output never exceeds input', () => {
    const stats: OracleStats = { worstMs: 0, inputs: 0 };
    const valid = cipher.encrypt(realPush);
    const bytesOf = fc.uint8Array({ maxLength: 4096 }).map((b) => Buffer.from(b).toString('base64'));
    const tampered = fc.tuple(fc.nat(valid.length - 1), fc.constantFrom('A', '+', '/', '=', 'z')).map(([i, c]) => valid.slice(0, i) + c + valid.slice(i + 1));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 3000 }), bytesOf, tampered), (input) => {
        const out = underOracle(stats, input, () => cipher.decrypt(input), [CryptoError]);
        if (!(out instanceof Error)) expect(Buffer.byteLength(out.xml)).toBeLessThanOrEqual(input.length);
      }),
      { numRuns: RUNS },
    );
  });

  it('When signatures are checked on arbitrary strings, then the answer is false, never a throw, unless it is the real one', () => {
    const stats: OracleStats = { worstMs: 0, inputs: 0 };
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), fc.string(), fc.string({ maxLength: 5000 }), (token, timestamp, nonce, signature, encrypt) => {
        const a = underOracle(stats, signature, () => verifySignature({ token, timestamp, nonce, signature }), []);
        const b = underOracle(stats, signature, () => verifyMsgSignature({ token, timestamp, nonce, encrypt, msgSignature: signature }), []);
        expect(a).toBe(false);
        expect(b).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });
});
