/**
 * The benchmark scenarios. Each returns null when the bridge does not serve what it
 * measures yet, so the harness reports it as skipped instead of failing.
 */
import { measure, type LoadResult } from './lib/load.ts';

export interface BenchContext {
  baseUrl: string;
  durationSec: number;
  databaseUrl: string;
  redisUrl: string;
}

export interface ScenarioResult {
  result?: LoadResult;
  custom?: Record<string, string | number>;
  note?: string;
}

export interface Scenario {
  id: string;
  name: string;
  run(ctx: BenchContext): Promise<ScenarioResult | null>;
}

const available = async (url: string, init?: RequestInit) => {
  try {
    return (await fetch(url, init)).status < 400;
  } catch {
    return false;
  }
};

const CARD_BACKEND = 'Basic ' + Buffer.from('card-backend:demo-card-backend-secret').toString('base64');

export const scenarios: Scenario[] = [
  {
    id: 'healthz',
    name: 'wxbridge GET /healthz (full middleware stack)',
    run: async (ctx) => ({ result: await measure({ url: `${ctx.baseUrl}/healthz`, durationSec: ctx.durationSec }) }),
  },
  {
    id: 'jwks',
    name: 'wxbridge GET /.well-known/jwks.json',
    async run(ctx) {
      const url = `${ctx.baseUrl}/.well-known/jwks.json`;
      if (!(await available(url))) return null;
      return { result: await measure({ url, durationSec: ctx.durationSec }) };
    },
  },
  {
    id: 'token',
    name: 'wxbridge POST /oauth2/token (client_credentials, ES256)',
    async run(ctx) {
      const url = `${ctx.baseUrl}/oauth2/token`;
      const init = {
        method: 'POST' as const,
        headers: { authorization: CARD_BACKEND, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials&scope=notices%3Asend',
      };
      if (!(await available(url, init))) return null;
      return { result: await measure({ url, durationSec: ctx.durationSec, ...init }) };
    },
  },
];

/** Safe-mode pushes, each a new MsgId (so de-duplication claims every one), signed and encrypted as WeChat does. */
scenarios.push({
  id: 'push',
  name: 'wxbridge POST /wechat/push/demo (safe mode, unique MsgId, dedupe on Redis)',
  async run(ctx) {
    const { DEMO_ACCOUNT } = await import('../src/config/demo.ts');
    const { createMessageCipher, sha1Sorted } = await import('../src/wechat/crypto.ts');
    const { buildWeChatXml } = await import('../src/wechat/xml.ts');
    const cipher = createMessageCipher({ appId: DEMO_ACCOUNT.appId, encodingAesKeys: [DEMO_ACCOUNT.encodingAesKey] });
    let seq = 0n;
    const base = BigInt(Date.now()) * 1000n;
    const openid = 'oBenchUser000000000000000001';
    const sample = () => {
      const timestamp = String(Math.floor(Date.now() / 1000));
      const nonce = String(Math.floor(Math.random() * 1e9));
      const xml = buildWeChatXml({ ToUserName: DEMO_ACCOUNT.originalId, FromUserName: openid, CreateTime: Number(timestamp), MsgType: 'text', Content: 'hello', MsgId: base + seq++ });
      const encrypt = cipher.encrypt(xml);
      const q = new URLSearchParams({
        signature: sha1Sorted(DEMO_ACCOUNT.token, timestamp, nonce),
        timestamp,
        nonce,
        openid,
        encrypt_type: 'aes',
        msg_signature: sha1Sorted(DEMO_ACCOUNT.token, timestamp, nonce, encrypt),
      });
      return { path: `/wechat/push/demo?${q}`, body: `<xml><ToUserName><![CDATA[${DEMO_ACCOUNT.originalId}]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>` };
    };
    const probe = sample();
    if (!(await available(`${ctx.baseUrl}${probe.path}`, { method: 'POST', body: probe.body, headers: { 'content-type': 'text/xml' } }))) return null;
    return {
      result: await measure({
        url: `${ctx.baseUrl}/wechat/push/demo`,
        method: 'POST',
        headers: { 'content-type': 'text/xml' },
        setupRequest: (req) => ({ ...req, ...sample() }),
        durationSec: ctx.durationSec,
      }),
    };
  },
});
