/**
 * Admin pages in a real browser: a page that records CSP violations, the sign-in with a
 * TOTP code, and the same page shot at desktop and 375 px widths. Shared by the admin
 * browser tests (test/browser/admin*.test.ts).
 */
import type { Browser, Page } from 'playwright-core';
import { nextCode, type AdminTestApp, type TestAdmin } from '../admin/helpers.ts';
import { newPage, screenshot } from './browser.ts';

export const DESKTOP = { width: 1280, height: 860 };
export const PHONE = { width: 375, height: 740 };

export function adminBrowser(app: AdminTestApp, browser: Browser, prefix: string) {
  const cspErrors: string[] = [];
  return {
    cspErrors,
    async open(kind: 'desktop' | 'mobile'): Promise<Page> {
      const page = await newPage(browser, kind, 'en-US');
      page.setDefaultTimeout(60_000);
      page.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
      });
      return page;
    },
    async signIn(page: Page, who: TestAdmin): Promise<void> {
      await page.goto(`${app.baseUrl}/admin/login`);
      await page.fill('#email', who.email);
      await page.fill('#password', who.password);
      await Promise.all([page.waitForURL(/\/admin\/login\/code/), page.click('button[type=submit]')]);
      await page.fill('#code', nextCode(app, who.totpSecret));
      await page.click('button[type=submit]');
      await page.waitForURL(/\/admin($|\?|\/)/);
    },
    /** The same page at both sizes, saved as test-artifacts/<prefix>-<name>-{desktop,375}.png; returns its width at 375 px. */
    async shoot(page: Page, name: string): Promise<number> {
      await page.setViewportSize(DESKTOP);
      await screenshot(page, `${prefix}-${name}-desktop`);
      await page.setViewportSize(PHONE);
      await screenshot(page, `${prefix}-${name}-375`);
      const width = await page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth);
      await page.setViewportSize(DESKTOP);
      return width;
    },
  };
}
