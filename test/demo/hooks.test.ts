/**
 * The demo merchant's intents endpoint and webhook receiver: signed like a real
 * merchant's, personalized per account, and refusing unsigned calls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_SECRETS } from '../../src/config/demo.ts';
import { signedHeaders } from '../../src/linking/verify-api.connector.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

describe('demo merchant hooks', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app.stop();
  });

  const post = (path: string, body: unknown, secret: string | null) => {
    const text = JSON.stringify(body);
    return fetch(`${app.baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(secret ? signedHeaders(secret, text, new Date()) : {}) },
      body: text,
    });
  };

  it('When a signed balance intent arrives, then the reply names the account and is stable for it', async () => {
    const call = { intent: 'balance', text: '余额', account: 'C0000ABCD1234', binding_id: 'b1', sub: 's1' };
    const a = (await (await post('/demo/merchant/card/intents', call, DEMO_SECRETS.webhook)).json()) as { reply: { type: string; content: string } };
    expect(a.reply.type).toBe('text');
    expect(a.reply.content).toContain('1234');
    const b = (await (await post('/demo/merchant/card/intents', call, DEMO_SECRETS.webhook)).json()) as { reply: { content: string } };
    expect(b.reply.content).toBe(a.reply.content);
    const bill = (await (await post('/demo/merchant/card/intents', { ...call, intent: 'bill' }, DEMO_SECRETS.webhook)).json()) as { reply: { type: string } };
    expect(bill.reply.type).toBe('news');
  });

  it('When an intent or webhook is unsigned or signed with another secret, then it is refused', async () => {
    const call = { intent: 'balance', text: '余额', account: 'C1', binding_id: 'b1', sub: 's1' };
    expect((await post('/demo/merchant/card/intents', call, null)).status).toBe(401);
    expect((await post('/demo/merchant/card/intents', call, 'another-secret-value')).status).toBe(401);
    expect((await post('/demo/merchant/card/webhooks', { id: 'x', type: 'binding.created', data: {} }, null)).status).toBe(401);
  });

  it('When a signed webhook arrives, then the demo merchant records it for the demo page', async () => {
    const r = await post('/demo/merchant/card/webhooks', { id: 'evt_1', type: 'binding.created', createdAt: new Date().toISOString(), data: { binding_id: 'b' } }, DEMO_SECRETS.webhook);
    expect(r.status).toBe(204);
    const list = (await (await fetch(`${app.baseUrl}/demo/merchant/card/webhooks`)).json()) as { events: { type: string }[] };
    expect(list.events[0]!.type).toBe('binding.created');
  });
});
