/**
 * The end-user journey in a real browser (issue 4 "Tests"): Chromium (Debian's package)
 * driven by playwright-core, in WeChat's shoes (a phone viewport and a MicroMessenger user
 * agent) and in a desktop browser through the sandbox, for each proof method. Screenshots go
 * to test-artifacts/linking/ for people to look at. No inline script may run: any console
 * error (a CSP violation included) on our pages fails the test.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_SECRETS } from '../../src/config/demo.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { BOOT_TIMEOUT_MS, control, freshCard, WECHAT_UA } from '../linking/helpers.ts';
import { browserSuite } from '../helpers/browser.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = 'test-artifacts/linking';

describe.skipIf(!existsSync(CHROMIUM))(browserSuite('linking pages in Chromium'), () => {
  let app: TestApp;
  let browser: Browser;
  const errors: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    app = await startTestApp();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  }, BOOT_TIMEOUT_MS);
  afterAll(async () => {
    await browser?.close();
    await app?.stop();
  });

  async function phone(lang = 'zh-CN'): Promise<{ ctx: BrowserContext; page: Page }> {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, userAgent: WECHAT_UA, locale: lang, extraHTTPHeaders: { 'accept-language': lang } });
    return { ctx, page: watch(await ctx.newPage()) };
  }

  function watch(page: Page): Page {
    // Failed loads are judged by the response listener (the browser's own /favicon.ico is no error of ours).
    page.on('console', (m) => {
      if (m.type() === 'error' && !page.url().includes('/sandbox/') && !m.text().startsWith('Failed to load resource')) errors.push(`${page.url()}: ${m.text()}`);
    });
    page.on('response', (r) => {
      const u = new URL(r.url());
      if (r.status() >= 500 || (r.status() === 404 && u.pathname !== '/favicon.ico' && !u.pathname.startsWith('/sandbox/'))) errors.push(`${r.status()} ${u.pathname}`);
    });
    page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`));
    return page;
  }

  /** The first match's text, once the page that has it has loaded. */
  async function textOf(page: Page, selector: string): Promise<string> {
    await page.waitForLoadState();
    const el = await page.waitForSelector(selector, { timeout: 10_000 });
    return ((await el.textContent()) ?? '').trim();
  }

  const shot = (page: Page, name: string) => page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });

  /** The sandbox's authorize page: pick the simulated user, then allow (or decline). */
  async function authorizeAs(page: Page, userId: string, opts: { decline?: boolean; doubleRedirect?: boolean } = {}): Promise<void> {
    await page.waitForURL(/\/sandbox\/connect\/oauth2\/authorize/);
    await page.check(`input[name="user"][value="${userId}"]`);
    if (opts.doubleRedirect) await page.check('input[name="double_redirect"]');
    await page.click(`button[name="decision"][value="${opts.decline ? 'decline' : 'allow'}"]`);
  }

  /** Both rounds of a profile merchant (snsapi_base, then snsapi_userinfo). */
  async function login(page: Page, userId: string, opts: { doubleRedirect?: boolean } = {}): Promise<void> {
    await authorizeAs(page, userId, opts);
    await authorizeAs(page, userId, opts);
    await page.waitForURL(/\/link\/card/);
  }

  it('When a WeChat user verifies a card with the SMS code (through a double redirect), then the card shows as linked', async () => {
    const { userId } = await control<{ userId: string }>(app, '/users', { nickname: '小王 Wang' });
    const { ctx, page } = await phone();
    await page.goto(`${app.baseUrl}/link/card`);
    await login(page, userId, { doubleRedirect: true });
    expect(await textOf(page, 'h1')).toBe('我的绑定账户');
    await shot(page, '01-accounts-empty');
    await page.click('a[href="/link/card/verify"]');
    const card = freshCard();
    await page.fill('input[name="card"]', card);
    await shot(page, '02-verify-card');
    await page.click('button[type="submit"]');
    expect(await textOf(page, '.alert')).toContain('123456');
    await shot(page, '03-verify-sms');
    await page.fill('input[name="sms"]', '123456');
    await page.click('button[type="submit"]');
    expect(await textOf(page, '.alert-ok')).toBe('绑定成功。');
    expect(await textOf(page, '.lk-acct-name')).toContain(card.slice(-4));
    await shot(page, '04-accounts-linked');
    await ctx.close();
  }, 60_000);

  it('When a user signs in at the demo bank (OIDC) and later unlinks, then the account comes and goes with a confirmation', async () => {
    const { userId } = await control<{ userId: string }>(app, '/users', { nickname: 'Li' });
    const { ctx, page } = await phone();
    await page.goto(`${app.baseUrl}/link/card?next=%2Flink%2Fpower`);
    await login(page, userId);
    await page.click('a[href^="/link/card/oidc"]');
    await page.waitForURL(/\/demo\/idp-login\//);
    await shot(page, '05-idp-login');
    await page.fill('input[name="username"]', 'alice');
    await page.fill('input[name="password"]', 'demo');
    await page.click('button[type="submit"]');
    await page.waitForURL(/\/link\/card\?done=linked/);
    expect(await textOf(page, '.lk-acct-name')).toContain('•••• 1234');
    expect(await page.getAttribute('a.lk-continue', 'href')).toBe('/link/power');
    await page.click('a.lk-pill-danger');
    expect(await textOf(page, 'h1')).toBe('解除绑定？');
    await shot(page, '06-unlink-confirm');
    await page.click('button.btn-danger');
    expect(await textOf(page, '.alert-ok')).toBe('已解除绑定。');
    await ctx.close();
  }, 60_000);

  it('When the merchant sends a binding code link, then the user confirms and is linked (English page)', async () => {
    const tok = await fetch(`${app.baseUrl}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`card-backend:${DEMO_SECRETS.cardBackend}`).toString('base64')}` },
      body: 'grant_type=client_credentials',
    }).then((r) => r.json() as Promise<{ access_token: string }>);
    const made = await fetch(`${app.baseUrl}/api/v1/binding-codes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tok.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ account: 'GOLD-7788', display: 'Gold •••• 7788' }),
    }).then((r) => r.json() as Promise<{ url: string }>);
    const { userId } = await control<{ userId: string }>(app, '/users', { nickname: 'Emma' });
    const { ctx, page } = await phone('en');
    await page.goto(made.url);
    await login(page, userId);
    expect(await page.inputValue('input[name="code"]')).toMatch(/^[A-Z2-9]{12}$/);
    await shot(page, '07-code-confirm-en');
    await page.click('button[type="submit"]');
    expect(await textOf(page, '.alert-ok')).toBe('Account linked.');
    expect(await textOf(page, '.lk-acct-name')).toContain('Gold •••• 7788');
    await shot(page, '08-accounts-en');
    await ctx.close();
  }, 60_000);

  it('When the user is on a snapshot page or the link has expired, then a clear page explains what to do', async () => {
    const snap = await control<{ userId: string }>(app, '/users', { snapshot: true });
    const { ctx, page } = await phone();
    await page.goto(`${app.baseUrl}/link/card`);
    await authorizeAs(page, snap.userId);
    await authorizeAs(page, snap.userId);
    await page.waitForURL(/\/wechat\/oauth\/callback/);
    expect(await textOf(page, 'h1')).toBe('请使用完整服务');
    await shot(page, '09-snapshot');
    await page.goto(`${app.baseUrl}/wechat/oauth/callback?oa=demo&code=spent&state=AbC123`);
    expect(await textOf(page, 'h1')).toBe('链接已失效');
    await shot(page, '10-expired');
    await ctx.close();
  }, 60_000);

  it('When a newcomer opens the link in a desktop browser, then a QR page leads through the sandbox to a linked demo card', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'zh-CN' });
    const page = watch(await ctx.newPage());
    await page.goto(`${app.baseUrl}/link/card`);
    expect(await textOf(page, 'h1')).toBe('请在微信中打开');
    expect(await page.isVisible('.lk-qr img')).toBe(true);
    await shot(page, '11-desktop-open-in-wechat');
    await page.click('.lk-sandbox a.btn');
    // A new simulated WeChat user, made on the sandbox page itself.
    await page.waitForURL(/\/sandbox\/connect\/oauth2\/authorize/);
    await page.check('input[name="user"][value="__new"]');
    await page.fill('input[name="new_nickname"]', '新人 Newcomer');
    await page.click('button[name="decision"][value="allow"]');
    await page.waitForURL(/\/sandbox\/connect\/oauth2\/authorize/);
    await page.click('button[name="decision"][value="allow"]');
    await page.waitForURL(/\/link\/card$/);
    await page.click('a[href="/link/card/verify"]');
    await page.fill('input[name="card"]', '6222 0210 0000 9012');
    await page.click('button[type="submit"]');
    await page.fill('input[name="sms"]', '123456');
    await page.click('button[type="submit"]');
    expect(await textOf(page, '.alert-ok')).toBe('绑定成功。');
    await shot(page, '12-desktop-linked');
    await ctx.close();
    expect(errors).toEqual([]);
  }, 60_000);
});
