/**
 * The end of the newcomer's demo journey in a real browser (Chromium via playwright-core):
 * /demo/app → "Log in with WeChat" → /oauth2/authorize → the sandbox's WeChat consent →
 * linking a demo card → back through the authorization server → the demo app's callback
 * showing the verified token claims. Then a second card, and the account chooser.
 * Screenshots go to test-artifacts/oauth-*.png; no page may break the CSP.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { browserSuite, hasChromium, launchBrowser, newPage, screenshot } from '../helpers/browser.ts';

let seq = 0;
const card = () => `6222${String(Date.now() % 1e8).padStart(8, '0')}${String(++seq).padStart(4, '0')}`;

describe.skipIf(!hasChromium)(browserSuite('demo merchant app and account chooser in a browser'), () => {
  let app: TestApp;
  let browser: Browser;
  let page: Page;
  const cspErrors: string[] = [];

  beforeAll(async () => {
    app = await startTestApp();
    browser = await launchBrowser();
    page = await newPage(browser, 'wechat');
    page.setDefaultTimeout(15_000);
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
    });
  }, 180_000); // an embedded Postgres boots slowly on a busy machine
  afterAll(async () => {
    await browser?.close();
    await app?.stop();
  });

  /** The sandbox's WeChat pages: a new user on the first round, the same user after (base, then userinfo scope). */
  async function wechatConsent(): Promise<void> {
    await page.waitForURL(/\/sandbox\/connect\/oauth2\/authorize/);
    for (let round = 0; round < 3 && page.url().includes('/sandbox/connect/oauth2/authorize'); round++) {
      if (round === 0) {
        await page.check('input[name=user][value=__new]');
        await page.fill('input[name=new_nickname]', '新来的');
      }
      const before = page.url();
      await Promise.all([page.waitForURL((u) => u.href !== before), page.click('button[name=decision][value=allow]')]);
    }
  }

  async function linkCard(number: string): Promise<void> {
    await page.click('a.lk-method[href*="/verify"]');
    await page.fill('#f-card', number);
    await page.click('form button[type=submit]');
    await page.fill('#f-sms', '123456');
    await page.click('form button[type=submit]');
    await page.waitForURL(/\/link\/card\?(.*&)?done=linked/);
  }

  it('When a newcomer logs in from /demo/app and links a card, then the demo app shows the verified token claims', { timeout: 90_000 }, async () => {
    await page.goto(`${app.baseUrl}/demo/app`);
    await screenshot(page, 'oauth-demo-app');
    await page.click('#demo-app-login');
    await wechatConsent();
    await page.waitForURL(/\/link\/card\?/);
    await linkCard(card());
    await page.click('a.lk-continue');
    await page.waitForURL(/\/demo\/app\/callback/);
    expect(await page.getAttribute('#demo-app-verified', 'class')).toContain('alert-ok');
    expect(await page.textContent('#demo-app-at-header')).toContain('at+jwt');
    expect(await page.textContent('#demo-app-id-claims')).toContain('card-h5');
    await screenshot(page, 'oauth-demo-result');
  });

  it('When the user has two cards linked, then the account chooser lets them pick one, and that account is in the token', { timeout: 90_000 }, async () => {
    await page.goto(`${app.baseUrl}/link/card`);
    const second = card();
    await linkCard(second);
    await page.goto(`${app.baseUrl}/demo/app`);
    await page.click('#demo-app-login');
    await page.waitForSelector('#choose-account');
    await screenshot(page, 'oauth-chooser-375');
    const radios = page.locator('input[name=binding]');
    expect(await radios.count()).toBe(2);
    await radios.nth(1).check();
    const chosen = (await page.locator('#choose-account li').nth(1).textContent())!.replace(/\s+/g, ' ').trim();
    await page.click('#choose-continue');
    await page.waitForURL(/\/demo\/app\/callback/);
    const shown = (await page.textContent('#demo-app-account'))!.trim();
    expect(chosen).toContain(shown);
    expect(cspErrors).toEqual([]);
  });
});
