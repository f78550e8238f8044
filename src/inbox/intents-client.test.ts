/**
 * The intents client (DESIGN.md "Intents"): Standard Webhooks signature, bounded in time and
 * size, no redirects, and a merchant answer validated before it can reach a user.
 */
import { describe, expect, it } from 'vitest';
import type { MerchantConfig } from '../config/index.ts';
import { verifySigned } from '../webhooks/signing.ts';
import { createIntentsClient, IntentError, type IntentCall } from './intents-client.ts';

const merchant = (over: Partial<NonNullable<MerchantConfig['intents']>> = {}, webhookSecret?: string): MerchantConfig =>
  ({
    id: 'card',
    name: 'card',
    intents: { url: 'https://m.example/intents', secret: 'intents-secret-1', timeoutMs: 100, keywords: {}, menuKeys: {}, ...over },
    ...(webhookSecret ? { webhook: { url: 'https://m.example/wh', secret: webhookSecret } } : {}),
  }) as MerchantConfig;

const call: IntentCall = { intent: 'balance', text: '余额', account: 'A1', binding_id: 'b1', sub: 's1' };

function client(answer: (req: Request) => Response | Promise<Response>) {
  const seen: Request[] = [];
  const fetchFn = (async (url: string, init: RequestInit) => {
    const req = new Request(url, init);
    seen.push(req.clone());
    return answer(req);
  }) as unknown as typeof fetch;
  return { c: createIntentsClient({ fetch: fetchFn, now: () => Date.now() }), seen };
}

const json = (v: unknown, status = 200) => new Response(JSON.stringify(v), { status, headers: { 'content-type': 'application/json' } });

async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof IntentError) return err.reason;
    throw err;
  }
  throw new Error('expected an IntentError');
}

describe('intents client', () => {
  it('When an intent is called, then the body is signed the Standard Webhooks way and the reply comes back validated', async () => {
    const { c, seen } = client(() => json({ reply: { type: 'text', content: '余额 ¥1' } }));
    expect(await c.call(merchant(), call, 'msg:gh:1')).toEqual({ type: 'text', content: '余额 ¥1' });
    const req = seen[0]!;
    const raw = await req.text();
    expect(JSON.parse(raw)).toEqual(call);
    expect(() => verifySigned('intents-secret-1', raw, Object.fromEntries(req.headers))).not.toThrow();
    expect(req.headers.get('webhook-id')).toMatch(/^msg_[A-Za-z0-9_-]{43}$/);
  });

  it('When the intents block has no secret, then the webhook secret signs; with neither, nothing is sent', async () => {
    const { c, seen } = client(() => json({ reply: null }));
    expect(await c.call(merchant({ secret: undefined }, 'webhook-secret-1'), call, 'k')).toBeNull();
    expect(() => verifySigned('webhook-secret-1', JSON.stringify(call), Object.fromEntries(seen[0]!.headers))).not.toThrow();
    expect(await failure(c.call(merchant({ secret: undefined }), call, 'k'))).toBe('unsigned');
    expect(seen).toHaveLength(1);
  });

  it('When the merchant is slow, redirects, fails or answers too much, then the call fails with a reason', async () => {
    const slow = client((req) => new Promise<Response>((_, reject) => req.signal.addEventListener('abort', () => reject(new Error('aborted')))));
    expect(await failure(slow.c.call(merchant(), call, 'k'))).toBe('timeout');
    expect(await failure(client(() => new Response(null, { status: 302, headers: { location: 'https://evil.example' } })).c.call(merchant(), call, 'k'))).toBe('status');
    expect(await failure(client(() => json({}, 500)).c.call(merchant(), call, 'k'))).toBe('status');
    expect(await failure(client(() => new Response('x'.repeat(17 * 1024))).c.call(merchant(), call, 'k'))).toBe('invalid');
  });

  it('When the answer breaks the protocol, then it never reaches the user', async () => {
    for (const bad of [
      { reply: { type: 'news', title: 't', url: 'javascript:alert(1)' } },
      { reply: { type: 'text', content: '' } },
      { reply: { type: 'voice', mediaId: 'm' } },
      { reply: { type: 'text', content: 'x'.repeat(601) } },
    ]) {
      expect(await failure(client(() => json(bad)).c.call(merchant(), call, 'k'))).toBe('invalid');
    }
    expect(await failure(client(() => new Response('not json')).c.call(merchant(), call, 'k'))).toBe('invalid');
  });
});
