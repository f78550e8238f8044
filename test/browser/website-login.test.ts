/**
 * Website QR login in a real browser (wechat-protocol.md §1.10; issue 4 "Outside WeChat's
 * browser"): Chromium at a desktop, the bridge's "open in WeChat" page offering the QR login,
 * the sandbox's `connect/qrconnect` page, and the person's phone scanning and confirming it,
 * either from the sandbox phone panel or from a second (phone) page while the desktop page
 * waits and moves on by itself (its static script polls; no inline script may run).
 * Screenshots go to test-artifacts/website-login/.
 */
import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { browserSuite, hasChromium, launchBrowser } from '../helpers/browser.ts';
import { BOOT_TIMEOUT_MS, Browser as HttpBrowser, control, loginAs, startWebsiteLoginApp, WECHAT_UA } from '../linking/helpers.ts';

const ARTIFACTS = 'test-artifacts/website-login';

describe.skipIf(!hasChromium)(browserSuite('website QR login in Chromium'), () => {
  let app: TestApp;
  let browser: Browser;
  const errors: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    app = await startWebsiteLoginApp();
    browser = await launchBrowser();
  }, BOOT_TIMEOUT_MS);
  afterAll(async () => {
    await browser?.close();
    await app?.stop();
  });

  function watch(page: Page): Page {
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`${page.url()}: ${m.text()}`);
    });
    page.on('response', (r) => {
      if (r.status() >= 500) errors.push(`${r.status()} ${new URL(r.url()).pathname}`);
    });
    page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`));
    return page;
  }

  const shot = (page: Page, name: string) => page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });

  async function desktop(): Promise<Page> {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'zh-CN' });
    return watch(await ctx.newPage());
  }

  /** A person who has used the service once inside WeChat (so their unionid is known). */
  async function wechatUser(nickname: string): Promise<string> {
    const { userId } = await control<{ userId: string }>(app, '/users', { nickname });
    const r = await loginAs(app, new HttpBrowser(app.baseUrl, WECHAT_UA), 'site', userId);
    expect(r.status).toBe(302);
    return userId;
  }

  it('When a desktop user picks the QR login and confirms on the sandbox phone, then they land signed in on their accounts page', async () => {
    const userId = await wechatUser('桌面用户 Desk');
    const page = await desktop();
    await page.goto(`${app.baseUrl}/link/site`);
    expect((await page.textContent('h1'))?.trim()).toBe('请在微信中打开');
    const offer = page.locator('a[href*="via=website"]');
    expect(await offer.isVisible()).toBe(true);
    await shot(page, '01-desktop-offers-qr-login');
    await offer.click();
    await page.waitForURL(/\/sandbox\/connect\/qrconnect\?/);
    expect(await page.isVisible('#sbx-qrconnect img')).toBe(true);
    await shot(page, '02-qrconnect-page');
    await page.check(`input[name="user"][value="${userId}"]`);
    await page.click('button[name="decision"][value="allow"]');
    await page.waitForURL(/\/link\/site$/);
    expect((await page.textContent('h1'))?.trim()).toBe('我的绑定账户');
    expect(await page.textContent('body')).toContain('桌面用户 Desk');
    await shot(page, '03-signed-in-accounts');
    await page.context().close();
  }, 60_000);

  it('When the QR is scanned on a phone and confirmed there, then the waiting desktop page moves on by itself', async () => {
    const userId = await wechatUser('手机确认 Phone');
    const page = await desktop();
    await page.goto(`${app.baseUrl}/wechat/login?merchant=site&via=website`);
    await page.waitForURL(/\/sandbox\/connect\/qrconnect\?/);
    const scanUrl = await page.getAttribute('a[href*="/connect/confirm?uuid="]', 'href');
    expect(scanUrl).toBeTruthy();

    const phoneCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, userAgent: WECHAT_UA, locale: 'zh-CN' });
    const phone = watch(await phoneCtx.newPage());
    await phone.goto(scanUrl!);
    await phone.check(`input[name="user"][value="${userId}"]`);
    await shot(phone, '04-phone-confirm');
    await phone.click('button[name="decision"][value="allow"]');
    expect(await phone.textContent('main')).toContain('已确认登录');

    await page.waitForURL(/\/link\/site$/, { timeout: 15_000 });
    expect(await page.textContent('body')).toContain('手机确认 Phone');
    await shot(page, '05-desktop-after-phone');
    await phoneCtx.close();
    await page.context().close();
    expect(errors).toEqual([]);
  }, 60_000);
});
