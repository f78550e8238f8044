/**
 * Headless Chromium (Debian's package) through playwright-core, with the flags this
 * machine needs. Tests skip with a clear reason when the browser is not installed.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
/** A browser suite's title: it says why it is skipped only when it is. */
export const browserSuite = (name: string): string => (hasChromium ? name : `${name} (skipped: ${CHROMIUM} not installed; apt-get install -y chromium)`);
export const ARTIFACTS = join(process.cwd(), 'test-artifacts');

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

/** A WeChat-like mobile context (375 px wide, MicroMessenger user agent) or a desktop one. */
export async function newPage(browser: Browser, kind: 'wechat' | 'mobile' | 'desktop' = 'wechat', locale = 'zh-CN'): Promise<Page> {
  const ua =
    kind === 'wechat'
      ? 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN'
      : undefined;
  const ctx = await browser.newContext({
    viewport: kind === 'desktop' ? { width: 1280, height: 860 } : { width: 375, height: 740 },
    ...(ua ? { userAgent: ua } : {}),
    locale,
  });
  return ctx.newPage();
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
