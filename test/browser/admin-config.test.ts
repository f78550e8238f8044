/**
 * Merchants and official accounts made and edited in the admin UI, in a real browser
 * (Chromium through playwright-core), at 375 px and on a desktop, with screenshots saved to
 * test-artifacts/admin-config-*.png. Covers: an admin creates an official account and a
 * merchant on it and edits one; no page ever contains a secret typed into a form; a
 * merchant-scoped admin cannot open or post another merchant's form (403); a forged CSRF
 * token is refused; no page breaks the CSP.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserSuite, hasChromium, launchBrowser, screenshot } from '../helpers/browser.ts';
import { adminBrowser, PHONE } from '../helpers/admin-browser.ts';
import { makeAdmin, startAdminApp, START_TIMEOUT, type AdminTestApp } from '../admin/helpers.ts';

const SECRETS = { appSecret: 'browser-app-secret-8d1f42', token: 'browserPushTok9', aes: 'Br0wserAesKey0123456789abcdefghijklmnopqrst', verify: 'browser-verify-secret-77', webhook: 'browser-webhook-secret-31' };

describe.skipIf(!hasChromium)(browserSuite('admin config pages in a browser'), { timeout: 150_000 }, () => {
  let app: AdminTestApp;
  let browser: Browser;
  let b: ReturnType<typeof adminBrowser>;
  const u = Date.now().toString(36);
  const oa = `oa-${u}`;
  const shop = `shop-${u}`;

  beforeAll(async () => {
    app = await startAdminApp();
    browser = await launchBrowser();
    b = adminBrowser(app, browser, 'admin-config');
  }, START_TIMEOUT);
  afterAll(async () => {
    await browser?.close();
    await app?.stop();
  });

  const open = (kind: 'desktop' | 'mobile') => b.open(kind);
  /** Both sizes; nothing may stick out sideways at 375 px. */
  const shoot = async (page: Page, name: string) => expect(await b.shoot(page, name)).toBeLessThanOrEqual(PHONE.width);

  const noSecrets = async (page: Page) => {
    const html = await page.content();
    for (const s of Object.values(SECRETS)) expect(html).not.toContain(s);
  };

  it('When an admin creates an official account and a merchant on it, then edits the account, then the config has them and no page shows a secret, not even a refused form', async () => {
    const page = await open('desktop');
    await b.signIn(page, await makeAdmin(app, { role: 'admin' }));
    await page.goto(`${app.baseUrl}/admin/merchants`);
    await shoot(page, 'list');
    await page.click('text=New official account');
    await page.fill('#id', oa);
    await page.fill('#appId', `wx${u.padEnd(16, '0').slice(0, 16)}`);
    await page.fill('#originalId', 'gh_browser01234');
    await page.fill('#appSecret', SECRETS.appSecret);
    await page.fill('#token', SECRETS.token);
    // First a key one character short: refused (400), the typed fields come back, the secrets do not.
    await page.fill('#encodingAesKey', SECRETS.aes.slice(1));
    const [bad] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#account-form button[type=submit]')]);
    expect(bad.status()).toBe(400);
    expect(await page.locator('.flash-error').textContent()).toContain('encodingAesKey: must be exactly 43 letters or digits');
    expect(await page.inputValue('#originalId')).toBe('gh_browser01234');
    expect(await page.inputValue('#appSecret')).toBe('');
    await noSecrets(page);
    await page.fill('#appSecret', SECRETS.appSecret);
    await page.fill('#token', SECRETS.token);
    await page.fill('#encodingAesKey', SECRETS.aes);
    await shoot(page, 'account-new');
    await Promise.all([page.waitForURL(/\/admin\/merchants\?done=/), page.click('#account-form button[type=submit]')]);
    expect(await page.locator('.flash-ok').textContent()).toContain(`Official account ${oa} created.`);
    await noSecrets(page);

    await page.click('text=New merchant');
    await page.fill('#id', shop);
    await page.fill('#name', 'Browser Shop');
    await page.selectOption('#officialAccount', oa);
    await page.check('input[name=verifyEnabled]');
    await page.fill('#verifyUrl', 'https://shop.example/verify');
    await page.fill('#verifySecret', SECRETS.verify);
    await page.fill('#webhookUrl', 'https://shop.example/hooks');
    await page.fill('#webhookSecret', SECRETS.webhook);
    await shoot(page, 'merchant-new');
    await Promise.all([page.waitForURL(new RegExp(`/admin/merchants/${shop}\\?done=`)), page.click('#merchant-form button[type=submit]')]);
    expect(await page.locator('h1').textContent()).toBe('Browser Shop');
    await noSecrets(page);
    await shoot(page, 'merchant');

    // Edit the account: secrets left empty are kept; the page still only says "set".
    await page.goto(`${app.baseUrl}/admin/official-accounts/${oa}`);
    expect(await page.locator('label[for=appSecret] .tag').textContent()).toBe('set');
    await noSecrets(page);
    await page.fill('#originalId', 'gh_browser99999');
    await Promise.all([page.waitForURL(/\/admin\/merchants\?done=/), page.click('#account-form button[type=submit]')]);
    expect(app.deps.config.officialAccounts.find((a) => a.id === oa)).toMatchObject({ originalId: 'gh_browser99999', appSecret: SECRETS.appSecret, token: SECRETS.token });
    expect(app.deps.config.merchants.find((m) => m.id === shop)).toMatchObject({ officialAccount: oa, webhook: { url: 'https://shop.example/hooks', secret: SECRETS.webhook } });
    await page.goto(`${app.baseUrl}/admin/merchants/${shop}/edit`);
    await noSecrets(page);
    await shoot(page, 'merchant-edit');
    await page.goto(`${app.baseUrl}/admin/audit`);
    await noSecrets(page);
    expect(b.cspErrors).toEqual([]);
    await page.context().close();
  });

  it('When a merchant-scoped admin opens another merchant’s form by URL, then it is 403; a forged CSRF token on its own merchant’s form is refused', async () => {
    const page = await open('mobile');
    await b.signIn(page, await makeAdmin(app, { role: 'admin', merchantId: 'power' }));
    const res = await page.goto(`${app.baseUrl}/admin/merchants/card/edit`);
    expect(res!.status()).toBe(403);
    await shoot(page, 'forbidden');
    expect((await page.goto(`${app.baseUrl}/admin/official-accounts/new`))!.status()).toBe(403);
    await page.goto(`${app.baseUrl}/admin/merchants`);
    expect(await page.locator('#merchants').textContent()).not.toContain('card');

    await page.goto(`${app.baseUrl}/admin/merchants/power/edit`);
    await page.fill('#name', 'Forged name');
    await page.locator('#merchant-form input[name=_csrf]').evaluate((el) => void ((el as unknown as { value: string }).value = 'forged-token'));
    const [refused] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#merchant-form button[type=submit]')]);
    expect(refused.status()).toBe(403);
    await screenshot(page, 'admin-config-csrf-refused-375');
    expect(app.deps.config.merchants.find((m) => m.id === 'power')?.name).not.toBe('Forged name');
    expect(b.cspErrors).toEqual([]);
    await page.context().close();
  });
});
