/**
 * The verify-api failed-attempt limits (DESIGN.md "Linking protocols": "limits failed attempts
 * per user"; src/linking/verify-api.service.ts counts them per user and per account; ASVS 5.0
 * 2.4.1 anti-automation, 15.4.2 check-then-act must be atomic).
 *
 * - Parallel submissions: `submit` once read both counters, called the merchant and counted only
 *   after a rejection, so parallel submissions of open proofs all passed the read and a user got
 *   as many SMS-code guesses as proofs it opened. Each try is now reserved (INCR) before the
 *   merchant call and given back when the answer is not a failure (src/linking/attempt-limit.ts).
 * - Re-formatted input: the per-account counter was keyed by an HMAC of the raw first-step
 *   answers, so the same card typed with spaces was another "account" with a fresh counter,
 *   while the merchant (like the demo bank, src/demo/demo-bank.ts) normalises it to the same
 *   card. The answers are now normalised (NFKC, no spaces or separators, upper case) first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { BOOT_TIMEOUT_MS, Browser, field, freshCard, loginAs, newWeChatUser, startLinkingApp, verifyAccount } from './helpers.ts';

let app: TestApp;

beforeAll(async () => {
  ({ app } = await startLinkingApp());
}, BOOT_TIMEOUT_MS);
afterAll(async () => {
  await app.stop();
});

async function newUser(): Promise<Browser> {
  const b = new Browser(app.baseUrl);
  await loginAs(app, b, 'card', (await newWeChatUser(app)).userId);
  return b;
}

describe('verify-api failed-attempt limit under parallel submissions', () => {
  it('When one user submits wrong SMS codes on 15 open proofs at once, then at most maxFailedAttempts (5) reach the merchant; the rest are refused (429)', async () => {
    const b = await newUser();
    const card = freshCard();
    // Open 15 proofs and give each the card number (a `continue` step: no failure counted yet).
    const smsSteps: { _csrf: string; proof: string }[] = [];
    for (let i = 0; i < 15; i++) {
      const start = await b.get('/link/card/verify');
      expect(start.status).toBe(200);
      const step1 = await b.post('/link/card/verify', { _csrf: field(start.text, '_csrf'), proof: field(start.text, 'proof'), card });
      expect(step1.text).toContain('name="sms"');
      smsSteps.push({ _csrf: field(step1.text, '_csrf'), proof: field(step1.text, 'proof') });
    }
    // Now 15 different guesses at once.
    const results = await Promise.all(smsSteps.map((s, i) => b.post('/link/card/verify', { ...s, sms: String(900000 + i) })));
    const rejected = results.filter((r) => r.status === 400).length;
    const refused = results.filter((r) => r.status === 429).length;
    expect(rejected + refused).toBe(15);
    // Before tries were reserved ahead of the merchant call: 14 of 15 guesses reached the merchant.
    expect(rejected).toBeLessThanOrEqual(5);
  }, 120_000);
});

describe('verify-api per-account limit vs. re-formatted input', () => {
  it('When five users failed the SMS code for a card, then a new user typing the same card with spaces is refused too (429)', async () => {
    const card = freshCard();
    for (let i = 0; i < 5; i++) expect((await verifyAccount(await newUser(), 'card', { card }, '999999')).status).toBe(400);
    // Control: the exact same string is refused (what test/linking/proofs.test.ts covers).
    expect((await verifyAccount(await newUser(), 'card', { card })).status).toBe(429);
    // The same card as a person types it from the card face.
    const spaced = card.replace(/(\d{4})(?=\d)/g, '$1 ');
    const r = await verifyAccount(await newUser(), 'card', { card: spaced }, '999999');
    // Before the account key was normalised: 400, the guess reached the merchant on a fresh counter.
    expect(r.status).toBe(429);
    // With dashes, and in full-width digits with dots (an IME), it is still the same account.
    expect((await verifyAccount(await newUser(), 'card', { card: card.replace(/(\d{4})(?=\d)/g, '$1-') }, '999999')).status).toBe(429);
    const fullWidth = card.replace(/\d/g, (d) => String.fromCharCode(0xff10 + Number(d))).replace(/(.{4})(?=.)/gu, '$1.');
    expect((await verifyAccount(await newUser(), 'card', { card: fullWidth }, '999999')).status).toBe(429);
  }, 120_000);
});
