/**
 * Is this push really from WeChat, for this account, and fresh? (wechat-protocol.md §5.2,
 * §5.3, §6.2, §6.4; SECURITY.md A8, A9.) Transport-free: the route hands over the query and
 * the raw body bytes; what comes back is the validated inner message, or an AppError.
 *
 * Order, cheapest refusal first, and nothing parsed before a signature holds:
 * 1. `signature` = sha1(sort(token, timestamp, nonce)) in constant time — unsigned junk costs
 *    one SHA-1.
 * 2. `timestamp` within 300 s of our clock: WeChat publishes no freshness window, so a
 *    captured push would verify forever (A9).
 * 3. Encrypted (`encrypt_type=aes`): `Encrypt` is cut out of the raw bytes (the envelope is
 *    parsed only when compatible mode's clear text holds the tag too) and
 *    `msg_signature` over it checked in constant time; then decrypt with the current or the
 *    previous EncodingAESKey, the trailing appid checked by the cipher. The message is read
 *    from the decrypted XML only; in compatible mode the plaintext copy beside `Encrypt` is
 *    never used, because nothing signs it.
 *    Plaintext: `signature` does not cover the body, so the caller binds the signature to the
 *    body's hash (replay guard) before acting. An account with an EncodingAESKey (DESIGN.md:
 *    "optional: safe mode") accepts only encrypted pushes: otherwise anyone who saw one
 *    encrypted push's signature could resend it within the window with a plaintext body of
 *    their choosing.
 * 4. The hardened parser, then ToUserName = this account and the `openid` query = the sender.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { OfficialAccountConfig } from '../config/index.ts';
import { AppError } from '../http/errors.ts';
import { CryptoError, createMessageCipher, verifyMsgSignature, verifySignature, type MessageCipher } from '../wechat/crypto.ts';
import { InboundMessageError, parseInboundMessage, type InboundMessage } from '../wechat/messages.ts';
import { parseWeChatXml, XmlError } from '../wechat/xml.ts';

export const FRESHNESS_SECONDS = 300;

const hex40 = z.string().regex(/^[0-9a-f]{40}$/);
// Repeated parameters arrive as arrays and fail `z.string()`: a duplicated signature is refused.
const signedQuery = z.object({
  signature: hex40,
  timestamp: z.string().regex(/^\d{1,12}$/),
  nonce: z.string().regex(/^[A-Za-z0-9]{1,64}$/),
});
const pushQuery = signedQuery.extend({
  openid: z.string().min(1).max(128).optional(),
  encrypt_type: z.enum(['aes', 'raw']).optional(),
  msg_signature: hex40.optional(),
});
const verifyQuery = signedQuery.extend({ echostr: z.string().min(1).max(256) });

export interface VerifiedPush {
  message: InboundMessage;
  /** Present when the push was encrypted: the reply must be encrypted with the same key. */
  encryption?: { cipher: MessageCipher; keyIndex: number };
  /** Plaintext pushes only: what the replay guard binds to the signature. */
  replayGuard?: { signature: string; bodyHash: string };
}

export interface PushVerifier {
  /** GET URL verification (§5.2): the echostr to send back verbatim. */
  verifyUrl(account: OfficialAccountConfig, query: unknown): string;
  verifyPush(account: OfficialAccountConfig, query: unknown, body: Buffer): VerifiedPush;
}

const refuse = (why: string): AppError => new AppError('request.forbidden', 'push refused', { why });
const invalid = (why: string): AppError => new AppError('request.invalid', 'invalid push', { why });

// Base64 only, so the scan is linear; CDATA is what WeChat sends, bare text is tolerated.
const ENCRYPT_ELEMENT = /<Encrypt>(?:<!\[CDATA\[)?([A-Za-z0-9+/=]{1,90000})(?:\]\]>)?<\/Encrypt>/;
const BASE64 = /^[A-Za-z0-9+/=]{1,90000}$/;

export function createPushVerifier(o: { now: () => number }): PushVerifier {
  // Keyed by the (frozen) account object, so a config with other keys never meets a stale cipher.
  const ciphers = new WeakMap<OfficialAccountConfig, MessageCipher>();

  function cipherFor(account: OfficialAccountConfig): MessageCipher {
    let c = ciphers.get(account);
    if (!c) {
      if (!account.encodingAesKey) throw invalid('encrypted push for an account without EncodingAESKey');
      const keys = [account.encodingAesKey, ...(account.previousEncodingAesKey ? [account.previousEncodingAesKey] : [])];
      c = createMessageCipher({ appId: account.appId, encodingAesKeys: keys });
      ciphers.set(account, c);
    }
    return c;
  }

  function checkSigned(account: OfficialAccountConfig, q: z.infer<typeof signedQuery>): void {
    if (!verifySignature({ token: account.token, timestamp: q.timestamp, nonce: q.nonce, signature: q.signature })) throw refuse('signature');
    const skew = Math.abs(Math.floor(o.now() / 1000) - Number(q.timestamp));
    if (skew > FRESHNESS_SECONDS) throw refuse('stale timestamp');
  }

  function parseQuery<S extends z.ZodType>(schema: S, query: unknown): z.infer<S> {
    const r = schema.safeParse(query);
    if (!r.success) throw invalid(`query: ${r.error.issues.map((i) => i.path.join('.')).join(',')}`);
    return r.data;
  }

  /**
   * The envelope's `Encrypt`. Cut out of the raw bytes when the tag occurs once (every safe-mode
   * push). In compatible mode the user's own text travels in clear beside it, and may hold the
   * string `<Encrypt>` too: then the envelope is parsed (the hardened parser; `signature` has
   * held) and only the root's one `Encrypt` child counts.
   */
  function encryptOf(body: Buffer): string {
    const raw = body.toString('latin1');
    const first = raw.indexOf('<Encrypt>');
    if (first !== -1 && first === raw.lastIndexOf('<Encrypt>')) {
      const m = ENCRYPT_ELEMENT.exec(raw);
      if (m?.[1]) return m[1];
    }
    let outer: Record<string, unknown>;
    try {
      outer = parseWeChatXml(body);
    } catch (err) {
      if (err instanceof XmlError) throw invalid(`xml: ${err.reason}`);
      throw err;
    }
    const encrypt = outer.Encrypt;
    if (typeof encrypt !== 'string' || !BASE64.test(encrypt)) throw invalid('one Encrypt element expected');
    return encrypt;
  }

  function decrypt(account: OfficialAccountConfig, q: z.infer<typeof pushQuery>, body: Buffer): { xml: string; cipher: MessageCipher; keyIndex: number } {
    if (!q.msg_signature) throw invalid('msg_signature missing');
    const encrypt = encryptOf(body);
    if (!verifyMsgSignature({ token: account.token, timestamp: q.timestamp, nonce: q.nonce, encrypt, msgSignature: q.msg_signature })) {
      throw refuse('msg_signature');
    }
    const cipher = cipherFor(account);
    try {
      const { xml, keyIndex } = cipher.decrypt(encrypt);
      return { xml, cipher, keyIndex };
    } catch (err) {
      if (err instanceof CryptoError) throw err.reason === 'appid_mismatch' ? refuse('appid') : invalid(`decrypt: ${err.reason}`);
      throw err;
    }
  }

  return {
    verifyUrl(account, query) {
      const q = parseQuery(verifyQuery, query);
      checkSigned(account, q);
      return q.echostr;
    },

    verifyPush(account, query, body) {
      const q = parseQuery(pushQuery, query);
      checkSigned(account, q);
      const encrypted = q.encrypt_type === 'aes';
      if (!encrypted && account.encodingAesKey) throw refuse('plaintext push for an account in safe mode');
      const opened = encrypted ? decrypt(account, q, body) : undefined;
      let fields: Record<string, unknown>;
      try {
        fields = parseWeChatXml(opened ? opened.xml : body);
      } catch (err) {
        if (err instanceof XmlError) throw invalid(`xml: ${err.reason}`);
        throw err;
      }
      let message: InboundMessage;
      try {
        message = parseInboundMessage(fields);
      } catch (err) {
        if (err instanceof InboundMessageError) throw invalid(`message: ${err.issues.map((i) => `${i.path} ${i.code}`).join('; ')}`);
        throw err;
      }
      if (message.ToUserName !== account.originalId) throw refuse('ToUserName is not this account');
      if (q.openid !== undefined && q.openid !== message.FromUserName) throw invalid('openid does not match FromUserName');
      return {
        message,
        ...(opened ? { encryption: { cipher: opened.cipher, keyIndex: opened.keyIndex } } : {}),
        ...(!encrypted ? { replayGuard: { signature: q.signature, bodyHash: createHash('sha256').update(body).digest('base64url') } } : {}),
      };
    },
  };
}
