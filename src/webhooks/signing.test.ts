/**
 * Standard Webhooks signing (DESIGN.md "Webhooks"; SECURITY.md A9) and the retry schedule.
 */
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { retryDelay } from './sender.ts';
import { createSigner, verifySigned, webhookKey } from './signing.ts';

describe('signatures', () => {
  it('When an event is signed, then the header is v1,<HMAC-SHA256 of id.timestamp.body> as the scheme defines', async () => {
    const at = new Date('2025-03-01T04:00:00Z');
    const h = createSigner('demo-webhook-secret')('evt_1', at, '{"a":1}');
    const { createHmac } = await import('node:crypto');
    const expected = createHmac('sha256', 'demo-webhook-secret').update('evt_1.1740801600.{"a":1}').digest('base64');
    expect(h).toEqual({ 'webhook-id': 'evt_1', 'webhook-timestamp': '1740801600', 'webhook-signature': `v1,${expected}` });
  });

  it('When a merchant verifies with the library, then a fresh signed body passes and a changed body fails', () => {
    const secret = 'whsec_' + Buffer.from('0123456789abcdef0123456789abcdef').toString('base64');
    const body = JSON.stringify({ id: 'e', type: 'binding.created', createdAt: new Date().toISOString(), data: {} });
    const headers = { ...createSigner(secret)('e', new Date(), body) };
    expect(new Webhook(secret).verify(body, headers)).toMatchObject({ type: 'binding.created' });
    expect(verifySigned(secret, body, headers)).toMatchObject({ id: 'e' });
    expect(() => verifySigned(secret, body.replace('binding', 'identity'), headers)).toThrow();
  });

  it('When a secret is not whsec_, then its UTF-8 bytes are the key', () => {
    expect(Buffer.from(webhookKey('密钥-secret')).toString('utf8')).toBe('密钥-secret');
  });
});

describe('retry schedule', () => {
  it('When attempts fail, then delays double from the base up to the cap, within ±20 %', () => {
    const p = { baseMs: 5_000, capMs: 3_600_000 };
    expect(retryDelay(1, p, () => 0.5)).toBe(5_000);
    expect(retryDelay(4, p, () => 0.5)).toBe(40_000);
    expect(retryDelay(30, p, () => 0.5)).toBe(3_600_000);
    expect(retryDelay(1, p, () => 0)).toBe(4_000);
    expect(retryDelay(1, p, () => 1)).toBe(6_000);
  });

  it('When the defaults run for a day, then about 30 attempts are made', () => {
    let t = 0;
    let n = 0;
    while (t <= 24 * 3600_000) t += retryDelay(++n, { baseMs: 5_000, capMs: 3_600_000 }, () => 0.5);
    expect(n).toBeGreaterThan(25);
    expect(n).toBeLessThan(40);
  });
});
