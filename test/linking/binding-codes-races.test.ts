/**
 * Binding codes are bound to one merchant and single-use under racing redemptions (DESIGN.md
 * "Linking protocols": binding-code "single-use, short-lived and bound to one merchant
 * account"; SECURITY.md T7, ASVS 5.0 15.4.2), and the wrong-code limit holds under parallel
 * guesses (ASVS 5.0 2.4.1). The other tests redeem one code sequentially only, and never at
 * another merchant's page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_SECRETS } from '../../src/config/demo.ts';
import type { LinkingFeature } from '../../src/linking/index.ts';
import type { TestApp } from '../helpers/app.ts';
import { BOOT_TIMEOUT_MS, Browser, field, loginAs, newWeChatUser, startLinkingApp } from './helpers.ts';

let app: TestApp;
let linking: LinkingFeature;

async function token(clientId: string, secret: string): Promise<string> {
  const r = await fetch(`${app.baseUrl}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials' }).toString(),
  });
  return ((await r.json()) as { access_token: string }).access_token;
}
async function makeCode(tok: string, account: string): Promise<string> {
  const r = await fetch(`${app.baseUrl}/api/v1/binding-codes`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' },
    body: JSON.stringify({ account, display: null, expiresIn: 600 }),
  });
  expect(r.status).toBe(201);
  return ((await r.json()) as { code: string }).code;
}
async function userAt(merchant: string): Promise<{ b: Browser; identityId: string }> {
  const b = new Browser(app.baseUrl);
  const { userId } = await newWeChatUser(app);
  await loginAs(app, b, merchant, userId);
  const u = (await (await fetch(`${app.baseUrl}/sandbox/control/users/${userId}`)).json()) as { accounts: { openid: string }[] };
  return { b, identityId: (await linking.service.findIdentity('wx1234567890abcdef', u.accounts[0]!.openid))!.id };
}
const bindingsOf = async (account: string) => (await app.deps.db.query('SELECT merchant_id, status FROM bindings WHERE account_id = $1', [account])).rows;

beforeAll(async () => {
  ({ app, linking } = await startLinkingApp());
}, BOOT_TIMEOUT_MS);
afterAll(async () => {
  await app.stop();
});

describe('binding codes across merchants and under racing redemptions', () => {
  it("When a user submits merchant power's code on merchant card's page, then it is an invalid code, nothing is linked, and the code still works at power", async () => {
    const code = await makeCode(await token('power-backend', DEMO_SECRETS.powerBackend), 'RV-POWER-1');
    const { b } = await userAt('card');
    const page = await b.get('/link/card/code');
    const r = await b.post('/link/card/code', { _csrf: field(page.text, '_csrf'), code });
    expect(r.status).toBe(400);
    expect(await bindingsOf('RV-POWER-1')).toEqual([]);
    const other = await userAt('power');
    const page2 = await other.b.get('/link/power/code');
    const ok = await other.b.post('/link/power/code', { _csrf: field(page2.text, '_csrf'), code });
    expect(ok.location).toBe('/link/power?done=linked');
    expect(await bindingsOf('RV-POWER-1')).toEqual([{ merchant_id: 'power', status: 'active' }]);
  }, 120_000);

  it('When two users (non-exclusive merchant) redeem one code at the same moment, then exactly one is linked, with one binding.created', async () => {
    const code = await makeCode(await token('power-backend', DEMO_SECRETS.powerBackend), 'RV-POWER-2');
    const [u1, u2] = await Promise.all([userAt('power'), userAt('power')]);
    const results = await Promise.all(
      [u1, u2].map((u) => linking.service.redeemBindingCode({ by: { code }, identityId: u.identityId, merchantId: 'power', actor: `user:${u.identityId}`, source: 'web' })),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.reason === 'invalid_code')).toHaveLength(1);
    expect(await bindingsOf('RV-POWER-2')).toHaveLength(1);
    const ev = await app.deps.db.query(`SELECT 1 FROM webhook_events WHERE type = 'binding.created' AND data->>'account' = 'RV-POWER-2'`);
    expect(ev.rows).toHaveLength(1);
  }, 120_000);

  it('When one user tries 25 wrong codes at once, then at most 10 are looked up (invalid_code) and the rest are refused (too_many), and a good code is refused too', async () => {
    const { identityId } = await userAt('power');
    const wrong = Array.from({ length: 25 }, (_, i) => `WRONGCODE${String(i).padStart(3, '0')}`);
    const results = await Promise.all(
      wrong.map((code) => linking.service.redeemBindingCode({ by: { code }, identityId, merchantId: 'power', actor: `user:${identityId}`, source: 'web' })),
    );
    // Before the counter was reserved ahead of the lookup, every parallel guess passed the read of it (25 invalid_code).
    expect(results.filter((r) => !r.ok && r.reason === 'invalid_code').length).toBeLessThanOrEqual(10);
    expect(results.filter((r) => !r.ok && r.reason === 'too_many').length).toBeGreaterThanOrEqual(15);
    expect(results.filter((r) => r.ok)).toEqual([]);
    const good = await makeCode(await token('power-backend', DEMO_SECRETS.powerBackend), 'RV-POWER-3');
    expect(await linking.service.redeemBindingCode({ by: { code: good }, identityId, merchantId: 'power', actor: `user:${identityId}`, source: 'web' })).toEqual({ ok: false, reason: 'too_many' });
    expect(await bindingsOf('RV-POWER-3')).toEqual([]);
  }, 120_000);
});
