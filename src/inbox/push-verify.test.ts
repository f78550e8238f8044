/**
 * Push verification (wechat-protocol.md §5.2, §5.3, §6.2, §6.4 and the §6.5 test vector;
 * SECURITY.md A8, A9): every refusal happens before anything is parsed or acted on.
 */
import { describe, expect, it } from 'vitest';
import type { OfficialAccountConfig } from '../config/index.ts';
import { AppError } from '../http/errors.ts';
import { createMessageCipher, sha1Sorted } from '../wechat/crypto.ts';
import { buildWeChatXml } from '../wechat/xml.ts';
import { createPushVerifier } from './push-verify.ts';

// §6.5 vector (a).
const KEY = 'Wx2bR7kLm9QpZ3vN8sT1uY4cF6hJ0dG5aE2iK7oP3qA';
const ENCRYPT =
  'R268oM8Y8gsQngRDFZ0W5XeoqXBhlhWeEQAZkDok9ybcLK5qWyhmqlG27CVwXStxz+dlSMW1037jNjtu2s1TtttTJ3Ock23w4AzsXsbW3K6RfR0zOxx4v1RO8qjxB6Y/XeVZxk7oRInepHELeICSmL2xL46aIDrNzTADYydxQreBz393zjw3H/Kd/HZTFtAV2GuLV+K1bhEzsA2/rfYuoskoUOtKWxmGtOVqigrimasiYs/peaAHLaIFrYEyPhgTxwWxLeYpzl1ZFeQccxEndUsJDHk++mT8V9nZzJX/Hv8LJptZFEsN9Dw6OvG+djuEM/dyhguHm7bVXxQDRlB4j2UsBTWaTIDO6IesnebYyeAGlnibZgfEv0cGvAps091qZILhkyPdgJ/Es4y6MSUccGsdb+2eVW6U2x1n9d6xGRs=';
const VECTOR_QUERY = {
  signature: '7266bd01e74c0f68b5b54d894e9f518ab58c7b9f',
  timestamp: '1700000000',
  nonce: '1320562453',
  openid: 'oBridgeTestUser0000000000001',
  encrypt_type: 'aes',
  msg_signature: '3ff6ae12301ef6eb62f1924333ac6604e5a79f05',
};
const VECTOR_BODY = Buffer.from(`<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><Encrypt><![CDATA[${ENCRYPT}]]></Encrypt></xml>`);

const base: OfficialAccountConfig = {
  id: 'demo',
  appId: 'wx1234567890abcdef',
  appSecret: 'secret-secret',
  token: 'bridgeToken2024',
  originalId: 'gh_0123456789ab',
  tokenMethod: 'stable',
  csWindow: { messageQuota: 5, messageWindowHours: 48, eventQuota: 3, eventWindowSeconds: 60 },
};
const safe: OfficialAccountConfig = { ...base, encodingAesKey: KEY };
const plain: OfficialAccountConfig = base;

const at = (seconds: number) => createPushVerifier({ now: () => seconds * 1000 });
const verifier = at(1_700_000_000);

function refusal(fn: () => unknown): { code: string; why: unknown } {
  try {
    fn();
  } catch (err) {
    if (err instanceof AppError) return { code: err.code, why: err.detail?.why };
    throw err;
  }
  throw new Error('expected a refusal');
}

function plainPush(fields: Record<string, unknown>, o: { timestamp?: string; nonce?: string; token?: string } = {}) {
  const timestamp = o.timestamp ?? '1700000000';
  const nonce = o.nonce ?? '42';
  const query = { signature: sha1Sorted(o.token ?? base.token, timestamp, nonce), timestamp, nonce, openid: String(fields.FromUserName) };
  return { query, body: Buffer.from(buildWeChatXml(fields)) };
}

const textFields = { ToUserName: 'gh_0123456789ab', FromUserName: 'oUser1', CreateTime: 1_700_000_000, MsgType: 'text', Content: '余额', MsgId: 24312345678901234n };

describe('push verification', () => {
  it('When the §6.5 safe-mode vector arrives, then it decrypts to the text message with its 64-bit MsgId intact', () => {
    const v = verifier.verifyPush(safe, VECTOR_QUERY, VECTOR_BODY);
    expect(v.message.kind).toBe('message.text');
    expect(v.message).toMatchObject({ Content: '绑定 账号', MsgId: '24312345678901234', FromUserName: 'oBridgeTestUser0000000000001' });
    expect(v.encryption?.keyIndex).toBe(0);
    expect(v.replayGuard).toBeUndefined();
  });

  it('When the key was rotated, then a push under the previous EncodingAESKey still opens, with that key for the reply', () => {
    const rotated: OfficialAccountConfig = { ...safe, encodingAesKey: 'A'.repeat(43), previousEncodingAesKey: KEY };
    expect(verifier.verifyPush(rotated, VECTOR_QUERY, VECTOR_BODY).encryption?.keyIndex).toBe(1);
  });

  it('When signature or msg_signature is wrong, then it is refused (403) before decrypting', () => {
    expect(refusal(() => verifier.verifyPush(safe, { ...VECTOR_QUERY, signature: '0'.repeat(40) }, VECTOR_BODY))).toEqual({ code: 'request.forbidden', why: 'signature' });
    expect(refusal(() => verifier.verifyPush(safe, { ...VECTOR_QUERY, msg_signature: 'f'.repeat(40) }, VECTOR_BODY))).toEqual({
      code: 'request.forbidden',
      why: 'msg_signature',
    });
  });

  it('When the timestamp is more than 300 s away from our clock, then the push is refused as stale (A9)', () => {
    expect(refusal(() => at(1_700_000_301).verifyPush(safe, VECTOR_QUERY, VECTOR_BODY)).why).toBe('stale timestamp');
    expect(refusal(() => at(1_699_999_699).verifyPush(safe, VECTOR_QUERY, VECTOR_BODY)).why).toBe('stale timestamp');
    expect(at(1_700_000_300).verifyPush(safe, VECTOR_QUERY, VECTOR_BODY).message.kind).toBe('message.text');
  });

  it('When the ciphertext was made for another appid, then it is refused after decrypt (§6.4 step 6)', () => {
    const encrypt = createMessageCipher({ appId: 'wxffffffffffffffff', encodingAesKeys: [KEY] }).encrypt(buildWeChatXml(textFields));
    const query = { ...VECTOR_QUERY, openid: 'oUser1', msg_signature: sha1Sorted(base.token, '1700000000', '1320562453', encrypt) };
    expect(refusal(() => verifier.verifyPush(safe, query, Buffer.from(buildWeChatXml({ ToUserName: 'gh_0123456789ab', Encrypt: encrypt })))).why).toBe('appid');
  });

  it('When a compatible-mode body carries tampered plaintext beside a valid Encrypt, then only the decrypted copy is used', () => {
    const body = Buffer.from(
      buildWeChatXml({ ToUserName: 'gh_0123456789ab', FromUserName: 'oBridgeTestUser0000000000001', CreateTime: 1_700_000_000, MsgType: 'text', Content: 'forged', MsgId: 1, Encrypt: ENCRYPT }),
    );
    expect(verifier.verifyPush(safe, VECTOR_QUERY, body).message).toMatchObject({ Content: '绑定 账号' });
  });

  it('When the clear text of a compatible-mode body holds "<Encrypt>" itself, then the envelope\'s own Encrypt is used; two of them at the root are refused', () => {
    const clear = { ToUserName: 'gh_0123456789ab', FromUserName: 'oBridgeTestUser0000000000001', CreateTime: 1_700_000_000, MsgType: 'text', MsgId: 1 };
    const typed = Buffer.from(buildWeChatXml({ ...clear, Content: 'what is <Encrypt>AAAA</Encrypt>?', Encrypt: ENCRYPT }));
    expect(verifier.verifyPush(safe, VECTOR_QUERY, typed).message).toMatchObject({ Content: '绑定 账号' });
    const twice = Buffer.from(`<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><Encrypt><![CDATA[${ENCRYPT}]]></Encrypt><Encrypt><![CDATA[AAAA]]></Encrypt></xml>`);
    expect(refusal(() => verifier.verifyPush(safe, VECTOR_QUERY, twice)).why).toBe('one Encrypt element expected');
  });

  it('When an account with an EncodingAESKey gets a plaintext push, then it is refused: its signature covers no body', () => {
    const { query, body } = plainPush(textFields);
    expect(refusal(() => verifier.verifyPush(safe, query, body)).why).toBe('plaintext push for an account in safe mode');
  });

  it('When a plaintext push is signed correctly, then it parses, and the replay guard binds the signature to the body hash', () => {
    const { query, body } = plainPush(textFields);
    const v = verifier.verifyPush(plain, query, body);
    expect(v.message).toMatchObject({ kind: 'message.text', MsgId: '24312345678901234' });
    expect(v.replayGuard?.signature).toBe(query.signature);
    expect(v.replayGuard?.bodyHash).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('When the push names another account, a different sender, or duplicates a parameter, then it is refused', () => {
    const other = plainPush({ ...textFields, ToUserName: 'gh_someoneelse' });
    expect(refusal(() => verifier.verifyPush(plain, other.query, other.body)).why).toBe('ToUserName is not this account');
    const p = plainPush(textFields);
    expect(refusal(() => verifier.verifyPush(plain, { ...p.query, openid: 'oOther' }, p.body)).code).toBe('request.invalid');
    expect(refusal(() => verifier.verifyPush(plain, { ...p.query, signature: [p.query.signature, p.query.signature] }, p.body)).code).toBe('request.invalid');
  });

  it.each([
    ['XXE', '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><Content>&xxe;</Content></xml>'],
    ['billion laughs', `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><xml><a>&lol2;</a></xml>`],
    ['deep nesting', `<xml>${'<a>'.repeat(50)}x${'</a>'.repeat(50)}</xml>`],
    ['not XML', '{"MsgType":"text"}'],
  ])('When a signed plaintext push is hostile XML (%s), then it is refused as invalid', (_name, xml) => {
    const { query } = plainPush(textFields);
    expect(refusal(() => verifier.verifyPush(plain, query, Buffer.from(xml))).code).toBe('request.invalid');
  });

  it('When WeChat verifies the URL (§6.5 d), then the echostr comes back only with a valid, fresh signature', () => {
    const q = { signature: '03c30d21435884889cfa9acc4009a3a2ee3008f3', timestamp: '1700000100', nonce: '555666777', echostr: '4375120948345356249' };
    expect(at(1_700_000_100).verifyUrl(safe, q)).toBe('4375120948345356249');
    expect(refusal(() => at(1_700_000_100).verifyUrl(safe, { ...q, nonce: '1' })).why).toBe('signature');
    expect(refusal(() => at(1_700_009_999).verifyUrl(safe, q)).why).toBe('stale timestamp');
  });
});
