/**
 * WeChat push signatures and safe-mode message encryption (消息加解密).
 *
 * Implements wechat-protocol.md §5.2 (GET verification `signature`), §5.3 (POST `signature`),
 * §6.2 (`msg_signature`), §6.3 (encrypted reply envelope) and §6.4 (the AES scheme), with the checks
 * of SECURITY.md §A8: constant-time signature comparison, PKCS#7 with a 32-byte block handled by hand,
 * and the trailing appid verified after every decrypt.
 *
 * Transport-free: used by the bridge's push handler and by the sandbox's pusher (which plays WeChat).
 * Keys live only inside the cipher closure; no error message ever contains key or plaintext bytes.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { buildWeChatXml } from './xml.ts';

export type CryptoErrorReason = 'bad_key' | 'bad_base64' | 'bad_padding' | 'bad_length' | 'appid_mismatch';

export class CryptoError extends Error {
  constructor(readonly reason: CryptoErrorReason) {
    super(`wechat crypto: ${reason}`);
    this.name = 'CryptoError';
  }
}

/**
 * sha1 over the parts sorted byte-wise and concatenated, lowercase hex (§5.2, §6.2). Sorting the
 * UTF-8 bytes (not UTF-16 units) matches WeChat for any input; for the ASCII values WeChat sends the
 * two orders coincide.
 */
export function sha1Sorted(...parts: string[]): string {
  const sorted = parts.map((p) => Buffer.from(p, 'utf8')).sort(Buffer.compare);
  return createHash('sha1').update(Buffer.concat(sorted)).digest('hex');
}

/**
 * Constant-time string comparison for signatures (the SDK mistake STYLE.md warns about is `===`,
 * which leaks the matching prefix length through timing). The length is public (40 hex chars), so an
 * early return on mismatch leaks nothing. Case-sensitive: WeChat sends lowercase hex.
 */
export function safeEqualHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `signature` of GET verification and of every POST push: sha1(sort(token, timestamp, nonce)). */
export function verifySignature(p: { token: string; timestamp: string; nonce: string; signature: string }): boolean {
  return safeEqualHex(sha1Sorted(p.token, p.timestamp, p.nonce), p.signature);
}

/** `msg_signature` of a safe/compatible-mode push: sha1(sort(token, timestamp, nonce, Encrypt)). */
export function verifyMsgSignature(p: {
  token: string;
  timestamp: string;
  nonce: string;
  encrypt: string;
  msgSignature: string;
}): boolean {
  return safeEqualHex(sha1Sorted(p.token, p.timestamp, p.nonce, p.encrypt), p.msgSignature);
}

export interface MessageCipher {
  /** Encrypt with the CURRENT key (index 0) unless keyIndex given. random16 for test vectors only. */
  encrypt(xml: string, opts?: { random16?: Buffer; keyIndex?: number }): string;
  /** Tries each key in order (current, then previous); throws CryptoError on bad padding / length / appid mismatch. */
  decrypt(encrypt: string): { xml: string; keyIndex: number };
}

// AppIDs (wx…) and WeCom corp ids are printable ASCII; the appid is compared byte-wise after decrypt.
const appIdSchema = z.string().regex(/^[\x21-\x7e]{1,64}$/);
// Current first, then the previous one during an EncodingAESKey rotation (§6.4 step 7).
const keysSchema = z.array(z.string()).min(1).max(2);

const ENCODING_AES_KEY = /^[A-Za-z0-9]{43}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const PAD_BLOCK = 32; // WeChat pads to 32 bytes, not AES's 16 (§6.4 step 4)
const RANDOM_LEN = 16;
const HEADER_LEN = RANDOM_LEN + 4;

/** EncodingAESKey → 32-byte AES key (§6.4 step 1). Non-canonical last chars are accepted, as by WeChat's own SDKs. */
function decodeEncodingAesKey(k: string): Buffer {
  if (!ENCODING_AES_KEY.test(k)) throw new CryptoError('bad_key');
  const key = Buffer.from(`${k}=`, 'base64');
  if (key.length !== 32) throw new CryptoError('bad_key');
  return key;
}

/**
 * Creates the safe-mode cipher for one account (§6.4). Throws CryptoError('bad_key') unless every
 * EncodingAESKey is exactly 43 chars of [A-Za-z0-9].
 */
export function createMessageCipher(p: { appId: string; encodingAesKeys: string[] }): MessageCipher {
  const appIdText = appIdSchema.safeParse(p.appId);
  if (!appIdText.success) throw new RangeError('createMessageCipher: appId must be 1-64 printable ASCII characters');
  const keyTexts = keysSchema.safeParse(p.encodingAesKeys);
  // Never surface the zod issue: it could echo the rejected key material.
  if (!keyTexts.success) throw new CryptoError('bad_key');
  const appId = Buffer.from(appIdText.data, 'ascii');
  const keys = keyTexts.data.map(decodeEncodingAesKey);

  return {
    encrypt(xml, opts = {}) {
      const keyIndex = opts.keyIndex ?? 0;
      const key = keys[keyIndex];
      if (!Number.isInteger(keyIndex) || !key) throw new RangeError('encrypt: keyIndex out of range');
      const random16 = opts.random16 ?? randomBytes(RANDOM_LEN);
      if (random16.length !== RANDOM_LEN) throw new RangeError('encrypt: random16 must be 16 bytes');
      const body = Buffer.from(xml, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32BE(body.length, 0); // byte length, not character count (§6.4 step 3)
      const unpadded = RANDOM_LEN + 4 + body.length + appId.length;
      const pad = PAD_BLOCK - (unpadded % PAD_BLOCK); // 1..32; a full block when already aligned
      const plain = Buffer.concat([random16, len, body, appId, Buffer.alloc(pad, pad)]);
      const c = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
      c.setAutoPadding(false);
      return Buffer.concat([c.update(plain), c.final()]).toString('base64');
    },

    decrypt(encrypt) {
      if (encrypt.length === 0 || !BASE64.test(encrypt)) throw new CryptoError('bad_base64');
      const data = Buffer.from(encrypt, 'base64');
      // AES-CBC needs whole 16-byte blocks, and WeChat's 32-byte padding makes any valid message >= 32 bytes.
      if (data.length % 16 !== 0 || data.length < PAD_BLOCK) throw new CryptoError('bad_length');
      const errors: CryptoError[] = [];
      for (const [keyIndex, key] of keys.entries()) {
        const result = openWithKey(data, key, appId);
        if (typeof result === 'string') return { xml: result, keyIndex };
        errors.push(result);
      }
      // A right key with a wrong appid is the informative failure (a push meant for another
      // account); a wrong key yields garbage, reported as the current key's error.
      throw errors.find((e) => e.reason === 'appid_mismatch') ?? errors[0] ?? new CryptoError('bad_padding');
    },
  };
}

/**
 * One decryption attempt (§6.4 step 6). Returns the XML or the CryptoError to report. No padding
 * oracle exists here: callers decrypt only after `msg_signature` verified, which needs the token.
 */
function openWithKey(data: Buffer, key: Buffer, appId: Buffer): string | CryptoError {
  const d = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
  d.setAutoPadding(false);
  const plain = Buffer.concat([d.update(data), d.final()]);
  const pad = plain[plain.length - 1] ?? 0;
  if (pad < 1 || pad > PAD_BLOCK) return new CryptoError('bad_padding');
  for (let i = plain.length - pad; i < plain.length; i++) {
    if (plain[i] !== pad) return new CryptoError('bad_padding');
  }
  const end = plain.length - pad;
  if (end < HEADER_LEN) return new CryptoError('bad_length');
  const msgLen = plain.readUInt32BE(RANDOM_LEN);
  if (msgLen > end - HEADER_LEN) return new CryptoError('bad_length');
  const msgEnd = HEADER_LEN + msgLen;
  // The appid check is what binds the message to this account (§6.4 step 6; skipped by some SDKs).
  if (!plain.subarray(msgEnd, end).equals(appId)) return new CryptoError('appid_mismatch');
  return plain.toString('utf8', HEADER_LEN, msgEnd);
}

/**
 * The encrypted passive-reply envelope (§6.3): Encrypt, MsgSignature over
 * [token, TimeStamp, Nonce, Encrypt], TimeStamp (bare digits) and Nonce.
 */
export function encryptedEnvelope(p: { encrypt: string; token: string; timestamp: string; nonce: string }): string {
  // TimeStamp is emitted bare, so it must be canonical digits: "007" would be signed as "007" but
  // written as 7, and WeChat would reject the signature.
  if (!/^(?:0|[1-9]\d{0,14})$/.test(p.timestamp)) throw new RangeError('encryptedEnvelope: timestamp must be decimal digits');
  return buildWeChatXml({
    Encrypt: p.encrypt,
    MsgSignature: sha1Sorted(p.token, p.timestamp, p.nonce, p.encrypt),
    TimeStamp: BigInt(p.timestamp),
    Nonce: p.nonce,
  });
}
