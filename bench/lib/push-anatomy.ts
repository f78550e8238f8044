/**
 * Where a safe-mode push's CPU goes, stage by stage, measured in this process on one
 * thread (CPU time, so a busy machine disturbs it little): verifying and opening the push,
 * sealing the passive reply, and the three Redis commands every push makes (claim, customer-
 * service window, completion), through the app's own functions. Set beside the bridge's
 * CPU µs per push over HTTP, the rest is the HTTP server, Koa and the push service.
 */
import { createPushVerifier } from '../../src/inbox/push-verify.ts';
import { replyXml, text } from '../../src/inbox/reply.ts';
import { createRedisKv } from '../../src/store/kv-redis.ts';
import { encryptedEnvelope } from '../../src/wechat/crypto.ts';
import type { OfficialAccountConfig } from '../../src/config/index.ts';
import { pushSampler, type PushAccount } from './push-sample.ts';

const N = 20_000;

function cpuUs(work: () => void): number {
  const t0 = process.cpuUsage();
  work();
  const t = process.cpuUsage(t0);
  return (t.user + t.system) / N;
}

async function cpuUsAsync(work: (i: number) => Promise<unknown>, concurrency = 32): Promise<number> {
  const t0 = process.cpuUsage();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < N) await work(next++);
  }));
  const t = process.cpuUsage(t0);
  return (t.user + t.system) / N;
}

export interface PushAnatomy {
  verifyUs: number;
  replyUs: number;
  redisUs: number;
}

export async function pushAnatomy(account: PushAccount, redisUrl: string): Promise<PushAnatomy> {
  const sample = pushSampler(account);
  const pushes = Array.from({ length: N }, () => {
    const s = sample();
    return { query: Object.fromEntries(new URL(s.path, 'http://bench').searchParams), body: Buffer.from(s.body) };
  });
  const config = account as unknown as OfficialAccountConfig;
  const verifier = createPushVerifier({ now: Date.now });
  const verified = pushes.map((p) => verifier.verifyPush(config, p.query, p.body)); // warm-up, and the inputs of the reply stage
  const verifyUs = cpuUs(() => {
    for (const p of pushes) verifier.verifyPush(config, p.query, p.body);
  });
  const replyUs = cpuUs(() => {
    for (const v of verified) {
      const xml = replyXml(text('Reply with 1 for your balance, 2 for help.'), { toUser: v.message.FromUserName, fromUser: v.message.ToUserName, createTime: v.message.CreateTime });
      const encrypt = v.encryption!.cipher.encrypt(xml, { keyIndex: v.encryption!.keyIndex });
      encryptedEnvelope({ encrypt, token: account.token, timestamp: String(v.message.CreateTime), nonce: '1234567890' });
    }
  });
  const kv = await createRedisKv({ url: redisUrl, keyPrefix: `bench-anatomy:${Date.now()}:` });
  try {
    const three = (i: number) =>
      kv
        .setIfAbsent(`claim:${i}`, '{"s":"p","t":1}', 60_000)
        .then(() => kv.set(`window:${i % 100}`, '{"g":1,"e":2,"q":5}', 60_000))
        .then(() => kv.set(`claim:${i}`, '{"s":"d","r":null}', 60_000));
    await cpuUsAsync(three); // warm-up
    const redisUs = await cpuUsAsync(three);
    return { verifyUs, replyUs, redisUs };
  } finally {
    kv.client.disconnect();
  }
}
