/** Safe-mode pushes as WeChat sends them: each a new MsgId, signed and encrypted for one account. */
import { createMessageCipher, sha1Sorted } from '../../src/wechat/crypto.ts';
import { buildWeChatXml } from '../../src/wechat/xml.ts';
import { measure, type LoadResult } from './load.ts';

/** Whether the bridge serves `url` (a scenario whose endpoint is missing is skipped, not failed). */
export async function available(url: string, init?: RequestInit): Promise<boolean> {
  try {
    return (await fetch(url, init)).status < 400;
  } catch {
    return false;
  }
}

export interface PushAccount {
  id: string;
  appId: string;
  token: string;
  encodingAesKey: string;
  originalId: string;
}

export function pushSampler(account: PushAccount, openid = 'oBenchUser000000000000000001'): () => { path: string; body: string } {
  const cipher = createMessageCipher({ appId: account.appId, encodingAesKeys: [account.encodingAesKey] });
  let seq = 0n;
  const base = BigInt(Date.now()) * 1000n;
  return () => {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const nonce = String(Math.floor(Math.random() * 1e9));
    const xml = buildWeChatXml({ ToUserName: account.originalId, FromUserName: openid, CreateTime: Number(timestamp), MsgType: 'text', Content: 'hello', MsgId: base + seq++ });
    const encrypt = cipher.encrypt(xml);
    const q = new URLSearchParams({
      signature: sha1Sorted(account.token, timestamp, nonce),
      timestamp,
      nonce,
      openid,
      encrypt_type: 'aes',
      msg_signature: sha1Sorted(account.token, timestamp, nonce, encrypt),
    });
    return { path: `/wechat/push/${account.id}?${q}`, body: `<xml><ToUserName><![CDATA[${account.originalId}]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>` };
  };
}

/** Safe-mode pushes at `baseUrl`, each a new MsgId (so de-duplication claims every one); null when not served. */
export async function measurePush(baseUrl: string, account: PushAccount, durationSec: number): Promise<LoadResult | null> {
  const sample = pushSampler(account);
  const probe = sample();
  if (!(await available(`${baseUrl}${probe.path}`, { method: 'POST', body: probe.body, headers: { 'content-type': 'text/xml' } }))) return null;
  return measure({
    url: `${baseUrl}/wechat/push/${account.id}`,
    method: 'POST',
    headers: { 'content-type': 'text/xml' },
    setupRequest: (req) => ({ ...req, ...sample() }),
    durationSec,
  });
}
