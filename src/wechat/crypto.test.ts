// Vectors from wechat-protocol.md §5.2, §5.3 and §6.5; failure cases from §6.4 and SECURITY.md §A8.
import { createCipheriv, timingSafeEqual } from 'node:crypto';
import type * as NodeCrypto from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  CryptoError,
  createMessageCipher,
  encryptedEnvelope,
  safeEqualHex,
  sha1Sorted,
  verifyMsgSignature,
  verifySignature,
} from './crypto.ts';
import { buildWeChatXml, parseWeChatXml } from './xml.ts';

// Wrap (not replace) timingSafeEqual so the tests can prove the comparison goes through it.
vi.mock('node:crypto', async (importOriginal) => {
  const mod = await importOriginal<typeof NodeCrypto>();
  return { ...mod, timingSafeEqual: vi.fn(mod.timingSafeEqual) };
});

const TOKEN = 'bridgeToken2024';
const KEY = 'Wx2bR7kLm9QpZ3vN8sT1uY4cF6hJ0dG5aE2iK7oP3qA';
const OLD_KEY = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG';
const APPID = 'wx1234567890abcdef';
// AESKey from §6.5, given independently of our base64 decoding of KEY.
const AES_KEY = Buffer.from('5b1d9b47b90b9bd429677bcdf2c4f5b98e1c17a849d1d1b9684da22bba0fdea0', 'hex');

const INBOUND_XML =
  '<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oBridgeTestUser0000000000001]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[绑定 账号]]></Content><MsgId>24312345678901234</MsgId></xml>';
const INBOUND_ENCRYPT =
  'R268oM8Y8gsQngRDFZ0W5XeoqXBhlhWeEQAZkDok9ybcLK5qWyhmqlG27CVwXStxz+dlSMW1037jNjtu2s1TtttTJ3Ock23w4AzsXsbW3K6RfR0zOxx4v1RO8qjxB6Y/XeVZxk7oRInepHELeICSmL2xL46aIDrNzTADYydxQreBz393zjw3H/Kd/HZTFtAV2GuLV+K1bhEzsA2/rfYuoskoUOtKWxmGtOVqigrimasiYs/peaAHLaIFrYEyPhgTxwWxLeYpzl1ZFeQccxEndUsJDHk++mT8V9nZzJX/Hv8LJptZFEsN9Dw6OvG+djuEM/dyhguHm7bVXxQDRlB4j2UsBTWaTIDO6IesnebYyeAGlnibZgfEv0cGvAps091qZILhkyPdgJ/Es4y6MSUccGsdb+2eVW6U2x1n9d6xGRs=';
const REPLY_XML =
  '<xml><ToUserName><![CDATA[oBridgeTestUser0000000000001]]></ToUserName><FromUserName><![CDATA[gh_0123456789ab]]></FromUserName><CreateTime>1700000001</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[ok]]></Content></xml>';
const REPLY_ENCRYPT =
  'eiN6Y1EBLAR+rNGYrUITRXuwlv0jPAtoD8xy27XZnwbug7f23wrXkz8sX+B9xtCmhsCt0xR4/zXbMK7D2SOCZmYeos6sjcGpvSGw7m6qbpCkGNeKz+Wd0LOFdyhWy2NXmkRb8pGUSnDvM3LA7Dgav6Uk8TBW/c2TAvs/XzZoMqfck1WMWkQM3kfnPBnsfHcFbWJ87kkgMPnjQxVAieIe4JkupkzFllrHcv5mmxKoFkJqDkQLHF443F+0Tk+j2TMhu7oUHO3CK94TPr7CTMNt4R/Wq5RM/IGx0LZbqSYIp1b/gkcBIJ9EtTVk2BQg2byBy0gl+mkCTG9VGvgJyYaBDM9GfU5si11R6gch5PC4T7RE9baDx74V8A83Pytwvb3z';
const FULL_BLOCK_ENCRYPT =
  'R268oM8Y8gsQngRDFZ0W5ZSBHaSKSJRG+nRvGgpk4Zy9/ycSeBEDNQFv6aXQFQjP2Id6o1kEQo372YEFM1DqSvRPNVeQnIvao7r1glf1zY2j8xF7dKDeL/Of07lJ0gPJ';

const cipher = createMessageCipher({ appId: APPID, encodingAesKeys: [KEY] });
const ascii = (s: string) => Buffer.from(s, 'ascii');

/** Raw AES-256-CBC over a hand-made plaintext, to craft inputs our encrypt() would never produce. */
function seal(plain: Buffer, key = AES_KEY): string {
  const c = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  c.setAutoPadding(false);
  return Buffer.concat([c.update(plain), c.final()]).toString('base64');
}
function frame(xml: string, { len, appId = APPID }: { len?: number; appId?: string } = {}): Buffer {
  const body = Buffer.from(xml, 'utf8');
  const l = Buffer.alloc(4);
  l.writeUInt32BE(len ?? body.length, 0);
  return Buffer.concat([ascii('0123456789abcdef'), l, body, ascii(appId)]);
}
function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof CryptoError) return e.reason;
    throw e;
  }
  return 'no error';
}

describe('signatures (§5.2, §5.3, §6.5 d)', () => {
  it('When the official AAAAA GET example is signed, then the documented signature results', () => {
    expect(sha1Sorted('AAAAA', '1714036504', '1514711492')).toBe('f464b24fc39322e44b38aa78f5edd27bd1441696');
    expect(verifySignature({ token: 'AAAAA', timestamp: '1714036504', nonce: '1514711492', signature: 'f464b24fc39322e44b38aa78f5edd27bd1441696' })).toBe(true);
  });

  it('When the official plaintext POST example is checked, then its signature verifies', () => {
    expect(verifySignature({ token: 'AAAAA', timestamp: '1714037059', nonce: '486452656', signature: '899cf89e464efb63f54ddac96b0a0a235f53aa78' })).toBe(true);
  });

  it('When the bridge token signs the §6.5 (d) GET verification, then the documented signature results', () => {
    expect(sha1Sorted(TOKEN, '1700000100', '555666777')).toBe('03c30d21435884889cfa9acc4009a3a2ee3008f3');
  });

  it('When parts are given in any order, then they are sorted byte-wise before hashing', () => {
    expect(sha1Sorted('1514711492', 'AAAAA', '1714036504')).toBe(sha1Sorted('AAAAA', '1714036504', '1514711492'));
    // "+" (0x2B) sorts before digits and letters: base64 Encrypt values rely on plain byte order (§6.2).
    expect(sha1Sorted('a', '+b')).toBe(sha1Sorted('+b', 'a'));
  });

  it('When a signature is wrong, truncated, upper-cased or empty, then verification fails without throwing', () => {
    const good = '899cf89e464efb63f54ddac96b0a0a235f53aa78';
    for (const signature of [good.replace('8', '9'), good.slice(0, 39), good.toUpperCase(), '', `${good}0`]) {
      expect(verifySignature({ token: 'AAAAA', timestamp: '1714037059', nonce: '486452656', signature })).toBe(false);
    }
  });

  it('When signatures are compared, then crypto.timingSafeEqual does the comparison (never ===)', () => {
    const spy = vi.mocked(timingSafeEqual);
    spy.mockClear();
    expect(verifySignature({ token: 'AAAAA', timestamp: '1714037059', nonce: '486452656', signature: '899cf89e464efb63f54ddac96b0a0a235f53aa78' })).toBe(true);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(verifyMsgSignature({ token: TOKEN, timestamp: '1700000000', nonce: '1320562453', encrypt: INBOUND_ENCRYPT, msgSignature: '0'.repeat(40) })).toBe(false);
    expect(spy).toHaveBeenCalledTimes(2);
    expect(safeEqualHex('abc', 'abcd')).toBe(false); // length mismatch: false, no throw
  });
});

describe('safe-mode encryption (§6.4, §6.5)', () => {
  it('When the AESKey is derived, then it matches the §6.5 hex', () => {
    expect(Buffer.from(`${KEY}=`, 'base64').equals(AES_KEY)).toBe(true);
  });

  it('When vector (a) is built and encrypted with random16 "0123456789abcdef", then Encrypt, msg_signature and signature match exactly', () => {
    const xml = buildWeChatXml({
      ToUserName: 'gh_0123456789ab',
      FromUserName: 'oBridgeTestUser0000000000001',
      CreateTime: 1700000000,
      MsgType: 'text',
      Content: '绑定 账号',
      MsgId: 24312345678901234n,
    });
    expect(xml).toBe(INBOUND_XML);
    expect(Buffer.byteLength(xml)).toBe(278);
    const encrypt = cipher.encrypt(xml, { random16: ascii('0123456789abcdef') });
    expect(encrypt).toBe(INBOUND_ENCRYPT);
    expect(sha1Sorted(TOKEN, '1700000000', '1320562453', encrypt)).toBe('3ff6ae12301ef6eb62f1924333ac6604e5a79f05');
    expect(verifyMsgSignature({ token: TOKEN, timestamp: '1700000000', nonce: '1320562453', encrypt, msgSignature: '3ff6ae12301ef6eb62f1924333ac6604e5a79f05' })).toBe(true);
    expect(verifySignature({ token: TOKEN, timestamp: '1700000000', nonce: '1320562453', signature: '7266bd01e74c0f68b5b54d894e9f518ab58c7b9f' })).toBe(true);
    expect(cipher.decrypt(encrypt)).toEqual({ xml: INBOUND_XML, keyIndex: 0 });
  });

  it('When the vector (b) reply is encrypted and wrapped, then Encrypt and MsgSignature match and the envelope parses back', () => {
    const encrypt = cipher.encrypt(REPLY_XML, { random16: ascii('fedcba9876543210') });
    expect(encrypt).toBe(REPLY_ENCRYPT);
    const envelope = encryptedEnvelope({ encrypt, token: TOKEN, timestamp: '1700000001', nonce: '987654321' });
    expect(envelope).toBe(
      `<xml><Encrypt><![CDATA[${REPLY_ENCRYPT}]]></Encrypt><MsgSignature><![CDATA[349614aefa2a26d5f0643345882442f976d13b3b]]></MsgSignature><TimeStamp>1700000001</TimeStamp><Nonce><![CDATA[987654321]]></Nonce></xml>`,
    );
    const f = parseWeChatXml(envelope);
    expect(verifyMsgSignature({ token: TOKEN, timestamp: String(f.TimeStamp), nonce: String(f.Nonce), encrypt: String(f.Encrypt), msgSignature: String(f.MsgSignature) })).toBe(true);
    expect(cipher.decrypt(String(f.Encrypt)).xml).toBe(REPLY_XML);
  });

  it('When FullStr is already a multiple of 32 (vector c), then a full block of 0x20 is added', () => {
    const encrypt = cipher.encrypt('x'.repeat(26), { random16: ascii('0123456789abcdef') });
    expect(encrypt).toBe(FULL_BLOCK_ENCRYPT);
    expect(Buffer.from(encrypt, 'base64')).toHaveLength(96);
    expect(cipher.decrypt(encrypt).xml).toBe('x'.repeat(26));
  });

  it('When a push was encrypted with the previous key, then decrypt reports keyIndex 1 and the reply can reuse it', () => {
    const old = createMessageCipher({ appId: APPID, encodingAesKeys: [OLD_KEY] });
    const rotated = createMessageCipher({ appId: APPID, encodingAesKeys: [KEY, OLD_KEY] });
    const { xml, keyIndex } = rotated.decrypt(old.encrypt(INBOUND_XML));
    expect({ xml, keyIndex }).toEqual({ xml: INBOUND_XML, keyIndex: 1 });
    expect(old.decrypt(rotated.encrypt(REPLY_XML, { keyIndex })).xml).toBe(REPLY_XML);
    expect(rotated.decrypt(rotated.encrypt(REPLY_XML)).keyIndex).toBe(0);
  });

  it('When the trailing appid is another account\'s, then decrypt throws appid_mismatch', () => {
    const other = createMessageCipher({ appId: 'wx0000000000000000', encodingAesKeys: [KEY] });
    expect(reasonOf(() => cipher.decrypt(other.encrypt(INBOUND_XML)))).toBe('appid_mismatch');
    const rotated = createMessageCipher({ appId: APPID, encodingAesKeys: [OLD_KEY, KEY] });
    expect(reasonOf(() => rotated.decrypt(other.encrypt(INBOUND_XML)))).toBe('appid_mismatch');
  });

  it('When the padding byte is 0 or above 32 or inconsistent, then decrypt throws bad_padding', () => {
    const body = frame('<xml/>'); // 16 + 4 + 6 + 18 = 44 bytes
    expect(reasonOf(() => cipher.decrypt(seal(Buffer.concat([body, Buffer.alloc(20, 0)]))))).toBe('bad_padding');
    expect(reasonOf(() => cipher.decrypt(seal(Buffer.concat([body, Buffer.alloc(20, 33)]))))).toBe('bad_padding');
    expect(reasonOf(() => cipher.decrypt(seal(Buffer.concat([body, Buffer.alloc(19, 7), Buffer.from([20])]))))).toBe('bad_padding');
    expect(reasonOf(() => cipher.decrypt(seal(Buffer.concat([body, Buffer.alloc(20, 20)]))))).toBe('no error');
  });

  it('When the length field points past the buffer, then decrypt throws bad_length', () => {
    const body = frame('<xml/>', { len: 0xffff });
    expect(reasonOf(() => cipher.decrypt(seal(Buffer.concat([body, Buffer.alloc(20, 20)]))))).toBe('bad_length');
    // A padding that eats into the 20-byte header leaves no room for it.
    expect(reasonOf(() => cipher.decrypt(seal(Buffer.concat([ascii('0123456789abcdef'), Buffer.alloc(16, 16)]))))).toBe('bad_length');
  });

  it('When the ciphertext is truncated, empty or not base64, then decrypt throws a CryptoError', () => {
    const raw = Buffer.from(INBOUND_ENCRYPT, 'base64');
    expect(reasonOf(() => cipher.decrypt(raw.subarray(0, raw.length - 16).toString('base64')))).toBe('bad_padding');
    expect(reasonOf(() => cipher.decrypt(raw.subarray(0, raw.length - 5).toString('base64')))).toBe('bad_length');
    expect(reasonOf(() => cipher.decrypt(raw.subarray(0, 16).toString('base64')))).toBe('bad_length');
    expect(reasonOf(() => cipher.decrypt(''))).toBe('bad_base64');
    expect(reasonOf(() => cipher.decrypt('not base64!'))).toBe('bad_base64');
    expect(reasonOf(() => cipher.decrypt(`${INBOUND_ENCRYPT}\n`))).toBe('bad_base64');
  });

  it('When EncodingAESKeys are malformed or missing, then createMessageCipher throws bad_key without echoing them', () => {
    for (const keys of [[KEY.slice(1)], [`${KEY}A`], [`${KEY.slice(1)}+`], [], [KEY, KEY, KEY]]) {
      let err: unknown;
      try {
        createMessageCipher({ appId: APPID, encodingAesKeys: keys });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CryptoError);
      expect((err as CryptoError).reason).toBe('bad_key');
      expect((err as Error).message).not.toContain(KEY.slice(1, 20));
    }
  });

  it('When the appId is empty or not ASCII, then createMessageCipher refuses it', () => {
    expect(() => createMessageCipher({ appId: '', encodingAesKeys: [KEY] })).toThrow(RangeError);
    expect(() => createMessageCipher({ appId: 'wx 公众号', encodingAesKeys: [KEY] })).toThrow(RangeError);
  });

  it('When random16 or keyIndex are invalid, then encrypt refuses', () => {
    expect(() => cipher.encrypt('x', { random16: Buffer.alloc(15) })).toThrow(RangeError);
    expect(() => cipher.encrypt('x', { keyIndex: 1 })).toThrow(RangeError);
  });

  it('When the envelope timestamp is not canonical digits, then encryptedEnvelope refuses rather than mis-sign', () => {
    expect(() => encryptedEnvelope({ encrypt: 'x', token: TOKEN, timestamp: '0017', nonce: '1' })).toThrow(RangeError);
  });
});

describe('properties', () => {
  // Any code point except lone surrogates (not UTF-8 encodable). Built by hand because fast-check's
  // `unit: 'binary'` spends about a second on first use.
  const codePoint = fc
    .oneof(fc.integer({ min: 0, max: 0xd7ff }), fc.integer({ min: 0xe000, max: 0x10ffff }))
    .map((c) => String.fromCodePoint(c));

  it('When any unicode string is encrypted, then decrypt returns it unchanged', () => {
    const keys = createMessageCipher({ appId: APPID, encodingAesKeys: [KEY, OLD_KEY] });
    fc.assert(
      fc.property(fc.string({ unit: codePoint, maxLength: 200 }), fc.integer({ min: 0, max: 1 }), (s, keyIndex) => {
        expect(keys.decrypt(keys.encrypt(s, { keyIndex }))).toEqual({ xml: s, keyIndex });
      }),
      { numRuns: 300 },
    );
  });

  it('When arbitrary bytes are offered as Encrypt, then decrypt returns or throws CryptoError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 160 }), (bytes) => {
        try {
          cipher.decrypt(Buffer.from(bytes).toString('base64'));
        } catch (e) {
          expect(e).toBeInstanceOf(CryptoError);
        }
      }),
      { numRuns: 300 },
    );
  });
});
