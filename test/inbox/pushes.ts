/**
 * Pushes made by hand, exactly as WeChat signs and encrypts them (wechat-protocol.md §5.3,
 * §6.2): for the cases the sandbox will not produce — a forged signature, hostile bodies, a
 * retry sent while the first request is still running, a retry landing on another instance.
 */
import { randomInt } from 'node:crypto';
import { createMessageCipher, sha1Sorted } from '../../src/wechat/crypto.ts';
import { buildWeChatXml, parseWeChatXml } from '../../src/wechat/xml.ts';
import { AES_KEY, type Harness, type Mode } from './harness.ts';

/** A push signed (and encrypted outside plain mode) exactly as WeChat does; `o.token` forges it. */
export function signedPush(h: Harness, mode: Mode, fields: Record<string, unknown>, o: { timestamp?: string; token?: string } = {}) {
  const a = h.accounts[mode];
  const timestamp = o.timestamp ?? String(Math.floor(Date.now() / 1000));
  const nonce = String(randomInt(100_000_000, 2_000_000_000));
  const q = new URLSearchParams({ signature: sha1Sorted(o.token ?? a.token, timestamp, nonce), timestamp, nonce, openid: String(fields.FromUserName) });
  let body = buildWeChatXml(fields);
  if (mode !== 'plain') {
    const encrypt = createMessageCipher({ appId: a.appId, encodingAesKeys: [AES_KEY] }).encrypt(body);
    q.set('encrypt_type', 'aes');
    q.set('msg_signature', sha1Sorted(a.token, timestamp, nonce, encrypt));
    body = buildWeChatXml({ ToUserName: a.originalId, Encrypt: encrypt });
  }
  return { url: `${h.baseUrl}/wechat/push/${a.id}?${q}`, body };
}

export const post = (p: { url: string; body: string | Buffer }) => fetch(p.url, { method: 'POST', body: p.body, headers: { 'content-type': 'text/xml' } });

/** The Content of a passive reply, decrypted when it came encrypted. */
export function contentOf(h: Harness, mode: Mode, raw: string): unknown {
  const outer = parseWeChatXml(raw);
  const inner = mode === 'plain' ? outer : parseWeChatXml(createMessageCipher({ appId: h.accounts[mode].appId, encodingAesKeys: [AES_KEY] }).decrypt(String(outer.Encrypt)).xml);
  return inner.Content;
}

export const textPush = (h: Harness, mode: Mode, openid: string, content: string, msgId: bigint) => ({
  ToUserName: h.accounts[mode].originalId,
  FromUserName: openid,
  CreateTime: Math.floor(Date.now() / 1000),
  MsgType: 'text',
  Content: content,
  MsgId: msgId,
});

