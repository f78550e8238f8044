/**
 * The oidc connector caches openid-client's Configuration (discovery + client authentication)
 * for the process lifetime (src/linking/oidc.connector.ts). Admins edit a merchant's OIDC
 * client secret at runtime (src/admin/config-overlay.forms.ts; live config,
 * src/config/overlay.ts). The cache was once keyed by `issuer + clientId` only, so after a
 * secret rotation the bridge kept authenticating with the old secret until restart: OIDC
 * linking broke once the IdP dropped the old secret, and a revoked secret stayed in use.
 * The key now includes a digest of the secret.
 *
 * Proved with a mistyped secret that the admin then corrects: the correction must apply.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MerchantConfig } from '../../src/config/index.ts';
import type { TestApp } from '../helpers/app.ts';
import { BOOT_TIMEOUT_MS, Browser, linkWithOidc, loginAs, newWeChatUser, startLinkingApp } from './helpers.ts';

let app: TestApp;

beforeAll(async () => {
  ({ app } = await startLinkingApp());
}, BOOT_TIMEOUT_MS);
afterAll(async () => {
  await app.stop();
});

async function userIn(merchant: string): Promise<Browser> {
  const b = new Browser(app.baseUrl);
  await loginAs(app, b, merchant, (await newWeChatUser(app)).userId);
  return b;
}

describe('oidc connector and a changed client secret', () => {
  it('When the admin corrects a mistyped OIDC client secret, then the next proof authenticates with the corrected secret and links', async () => {
    // What the admin UI's config overlay does: the live merchants list gets the edited merchant.
    const merchants = app.deps.config.merchants as MerchantConfig[];
    const setSecret = (secret: string | null) => {
      const i = merchants.findIndex((m) => m.id === 'card');
      const card = merchants[i]!;
      merchants.splice(i, 1, { ...card, linking: card.linking.map((l) => (l.type === 'oidc' ? { ...l, clientSecret: secret ?? original } : l)) });
    };
    const oidc = merchants.find((m) => m.id === 'card')!.linking.find((l) => l.type === 'oidc')!;
    const original = (oidc as { clientSecret: string }).clientSecret;

    // Control: with a wrong secret the demo IdP refuses the token request (client authentication is checked).
    setSecret('mistyped-secret');
    expect((await linkWithOidc(await userIn('card'), 'card', 'bob')).status).toBe(400);

    // The admin fixes the secret.
    setSecret(null);
    const r = await linkWithOidc(await userIn('card'), 'card', 'carol');
    // Before the fix: still 400 — the Configuration cached under issuer+clientId kept the mistyped secret until restart.
    expect(r.location).toBe('/link/card?done=linked');
  }, 120_000);
});
