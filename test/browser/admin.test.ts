/**
 * The admin UI in a real browser (Chromium through playwright-core), at 375 px and on a
 * desktop, with screenshots saved to test-artifacts/admin-*.png. One browser for the file.
 * Covers: sign-in with TOTP enrolment, lockout, CSRF refusal, a merchant-scoped operator
 * opening another merchant's binding by URL (403), an unlink that makes the binding's
 * tokens inactive, a CSV import with bad rows, an edited audit row found by the chain
 * check, and notice retry / webhook replay (with the duplicate-risk confirmation of an
 * `unknown` delivery and a 403 on another merchant's). No page may break the CSP (no
 * inline script or style).
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../../src/admin/totp.ts';
import { browserSuite, hasChromium, launchBrowser, newPage, screenshot } from '../helpers/browser.ts';
import { DEMO_ACCOUNT } from '../../src/config/demo.ts';
import { introspect, makeAdmin, nextCode, seed, startAdminApp, tokenFor, type AdminTestApp, type Seeded, type TestAdmin, START_TIMEOUT } from '../admin/helpers.ts';

const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 375, height: 740 };

// A loaded 2-core box makes a browser step slow; the budget is per test.
describe.skipIf(!hasChromium)(browserSuite('admin UI in a browser'), { timeout: 150_000 }, () => {
  let app: AdminTestApp;
  let browser: Browser;
  let s: Seeded;
  const cspErrors: string[] = [];

  beforeAll(async () => {
    app = await startAdminApp();
    s = await seed(app);
    await seed(app);
    browser = await launchBrowser();
  }, START_TIMEOUT);
  afterAll(async () => {
    await browser?.close();
    await app?.stop();
  });

  async function open(kind: 'desktop' | 'mobile'): Promise<Page> {
    const page = await newPage(browser, kind, 'en-US');
    page.setDefaultTimeout(60_000);
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
    });
    return page;
  }

  async function signIn(page: Page, who: TestAdmin): Promise<void> {
    await page.goto(`${app.baseUrl}/admin/login`);
    await page.fill('#email', who.email);
    await page.fill('#password', who.password);
    await Promise.all([page.waitForURL(/\/admin\/login\/code/), page.click('button[type=submit]')]).catch(async (err: unknown) => {
      throw new Error(`password step did not reach the code page: ${await page.locator('.flash-error').textContent().catch(() => 'no message')}`, { cause: err });
    });
    await page.fill('#code', nextCode(app, who.totpSecret));
    await page.click('button[type=submit]');
    await page.waitForURL(/\/admin($|\?|\/)/);
  }

  /** The same page at both sizes. */
  async function shoot(page: Page, name: string): Promise<void> {
    await page.setViewportSize(DESKTOP);
    await screenshot(page, `admin-${name}-desktop`);
    await page.setViewportSize(PHONE);
    await screenshot(page, `admin-${name}-375`);
    await page.setViewportSize(DESKTOP);
  }

  it('When the demo admin signs in the first time, then they enrol TOTP by QR code, replace the one-time password and land on the dashboard', async () => {
    const password = /one-time password: (\S+)/.exec(app.deps.banner.join('\n'))![1]!;
    const page = await open('desktop');
    await page.goto(`${app.baseUrl}/admin`);
    expect(page.url()).toContain('/admin/login');
    await shoot(page, 'login');
    await page.fill('#email', 'admin@demo.local');
    await page.fill('#password', password);
    await page.click('button[type=submit]');
    await expect.poll(() => page.locator('h1').textContent()).toBe('Set up two-step verification');
    expect(await page.locator('img.qr').evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)).toBeGreaterThan(0);
    await shoot(page, 'enrol');
    const secret = (await page.locator('#totp-secret').textContent())!.replace(/\s+/g, '');
    app.clock.advance(30_000);
    await page.fill('#code', totpCode(secret, app.clock.now));
    await page.click('button[type=submit]');
    await page.waitForURL(/\/admin\/account\/password/);
    await shoot(page, 'password-forced');
    await page.fill('#current', password);
    await page.fill('#next', 'demo admin pass phrase');
    await page.fill('#confirm', 'demo admin pass phrase');
    await page.click('form.form button[type=submit]');
    await page.waitForURL(/\/admin\/account/);
    await page.goto(`${app.baseUrl}/admin`);
    expect(await page.locator('h1').textContent()).toBe('Dashboard');
    expect(await page.locator('svg.chart').count()).toBeGreaterThan(0);
    await shoot(page, 'dashboard');
    // The phone menu opens without script (<details>).
    await page.setViewportSize(PHONE);
    await page.click('.menu summary');
    await screenshot(page, 'admin-menu-375');
    await page.context().close();
  });

  it('When the password is wrong five times, then the sign-in page says it is locked', async () => {
    const a = await makeAdmin(app, { role: 'viewer' });
    const page = await open('mobile');
    await page.goto(`${app.baseUrl}/admin/login`);
    for (let i = 0; i < 5; i++) {
      await page.fill('#email', a.email);
      await page.fill('#password', `wrong-${i}`);
      await page.click('button[type=submit]');
      await page.waitForLoadState();
    }
    await page.fill('#email', a.email);
    await page.fill('#password', a.password);
    await page.click('button[type=submit]');
    expect(await page.locator('.flash-error').textContent()).toContain('locked');
    await screenshot(page, 'admin-lockout-375');
    await page.context().close();
  });

  it('When a merchant-scoped operator opens another merchant’s binding by URL, then the page is 403; a forged CSRF token is refused too', async () => {
    const op = await makeAdmin(app, { role: 'operator', merchantId: 'power' });
    const page = await open('desktop');
    await signIn(page, op);
    const res = await page.goto(`${app.baseUrl}/admin/bindings/${s.cardUser.bindingId}`);
    expect(res!.status()).toBe(403);
    await shoot(page, 'forbidden');
    await page.goto(`${app.baseUrl}/admin/bindings/${s.powerUser.bindingId}`);
    await page.locator('#unlink-form input[name=_csrf]').evaluate((el) => void ((el as unknown as { value: string }).value = 'forged-token'));
    await page.fill('#reason', 'should not happen');
    const [refused] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#unlink-form button')]);
    expect(refused.status()).toBe(403);
    await screenshot(page, 'admin-csrf-refused-desktop');
    expect((await app.deps.db.query('SELECT status FROM bindings WHERE id = $1', [s.powerUser.bindingId])).rows[0]).toEqual({ status: 'active' });
    await page.context().close();
  });

  it('When an operator unlinks a binding with a reason, then its access token introspects as inactive', async () => {
    const { cardUser } = await seed(app);
    const token = await tokenFor(app, cardUser);
    expect((await introspect(app, token)).active).toBe(true);
    const op = await makeAdmin(app, { role: 'operator', merchantId: 'card' });
    const page = await open('mobile');
    await signIn(page, op);
    await page.goto(`${app.baseUrl}/admin/bindings?merchant=card`);
    await shoot(page, 'bindings');
    await page.goto(`${app.baseUrl}/admin/bindings/${cardUser.bindingId}`);
    await shoot(page, 'binding');
    await page.fill('#reason', 'card reported stolen');
    await page.click('#unlink-form button');
    await page.waitForURL(/done=/);
    expect(await page.locator('.flash-ok').textContent()).toContain('Unlinked');
    await shoot(page, 'binding-unlinked');
    expect((await introspect(app, token)).active).toBe(false);
    await page.goto(`${app.baseUrl}/admin/identities/${cardUser.identityId}`);
    expect(await page.locator('.timeline').textContent()).toContain('Unlinked an account');
    await shoot(page, 'identity');
    await page.context().close();
  });

  it('When a CSV file with bad rows is chosen and dry-run, then the report lists every bad row', async () => {
    const op = await makeAdmin(app, { role: 'operator', merchantId: 'power' });
    const page = await open('desktop');
    await signIn(page, op);
    await page.goto(`${app.baseUrl}/admin/bindings/import`);
    const csv = [
      'merchant_id,openid,account_id,account_display',
      `power,${s.powerUser.openid},P-NEW-1,户号 N1`,
      'power,oUnknownOpenid,P-NEW-2,',
      `card,${s.cardUser.openid},C-9,`,
      'power,too,few',
    ].join('\n');
    await page.setInputFiles('#csv-file', { name: 'bindings.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await expect.poll(() => page.inputValue('#csv')).toContain('P-NEW-1');
    await page.click('button[value=dry-run]');
    await page.waitForSelector('#bad-rows');
    expect(await page.locator('#bad-rows li').count()).toBe(3);
    await shoot(page, 'import-dry-run');
    await page.context().close();
  });

  it('When someone edits an audit row in the table, then "Verify chain" reports the first broken row', async () => {
    const root = await makeAdmin(app, { role: 'admin' });
    const page = await open('desktop');
    await signIn(page, root);
    await page.goto(`${app.baseUrl}/admin/audit`);
    await page.click('#verify-chain');
    expect(await page.locator('#verify-result').textContent()).toContain('Chain intact');
    const victim = (await app.deps.db.query<{ id: number }>(`SELECT id FROM audit_log WHERE action = 'binding.linked' ORDER BY id LIMIT 1`)).rows[0]!.id;
    await app.deps.db.query(`UPDATE audit_log SET detail = '{"proof":"admin"}' WHERE id = $1`, [victim]);
    await page.click('#verify-chain');
    expect(await page.locator('#verify-result').textContent()).toContain(`row #${victim}`);
    await shoot(page, 'audit-broken');
    await page.context().close();
  });

  /** A notice delivery as the dispatcher leaves it in `status`. */
  async function noticeDelivery(user: Seeded['powerUser'], merchantId: string, status: 'failed' | 'unknown'): Promise<string> {
    const r = await app.deps.db.query<{ id: string }>(
      `WITH n AS (INSERT INTO notices (merchant_id, client_id, idempotency_key, request_hash, recipient, template, channel)
                  VALUES ($1, 'test', gen_random_uuid()::text, 'h', '{}', 'bill_due', 'template') RETURNING id)
       INSERT INTO notice_deliveries (notice_id, merchant_id, identity_id, binding_id, account_id, app_id, openid, status, channel, attempts, errcode, next_attempt_at)
       SELECT n.id, $1, $2, $3, 'acct', $4, $5, $6, $7, 3, $8, now() FROM n RETURNING id`,
      [merchantId, user.identityId, user.bindingId, DEMO_ACCOUNT.appId, user.openid, status, status === 'unknown' ? 'customer-service' : 'template', status === 'failed' ? 43004 : null],
    );
    return r.rows[0]!.id;
  }
  const retriedBy = async (id: string) =>
    (await app.deps.db.query<{ actor: string }>(`SELECT actor FROM audit_log WHERE action = 'deliveries.retried' AND (detail->>'noticeDelivery' = $1 OR detail->>'webhookEvent' = $1)`, [id])).rows.map((r) => r.actor);

  it('When an operator retries a failed notice, confirms the retry of an unknown one and replays a webhook, then each goes back to its queue and is audited; another merchant’s delivery by URL is 403', async () => {
    const op = await makeAdmin(app, { role: 'operator', merchantId: 'power' });
    const failed = await noticeDelivery(s.powerUser, 'power', 'failed');
    const unknown = await noticeDelivery(s.powerUser, 'power', 'unknown');
    const others = await noticeDelivery(s.cardUser, 'card', 'failed');
    const event = (await app.deps.db.query<{ id: string }>(`SELECT id FROM webhook_events WHERE merchant_id = 'power' AND data->>'bindingId' = $1`, [s.powerUser.bindingId])).rows[0]!.id;
    await app.deps.db.query(`UPDATE webhook_events SET status = 'abandoned', last_status = 500, abandoned_at = now() WHERE id = $1`, [event]);
    const page = await open('mobile');
    await signIn(page, op);

    await page.goto(`${app.baseUrl}/admin/deliveries?tab=notices&status=failed`);
    await shoot(page, 'deliveries-failed');
    await page.click(`#delivery-${failed} button`);
    await page.waitForURL(/done=/);
    expect(await page.locator('.flash-ok').textContent()).toContain('Queued for another attempt');
    expect(await retriedBy(failed)).toEqual([`admin:${op.id}`]);

    await page.goto(`${app.baseUrl}/admin/deliveries?tab=notices&status=unknown`);
    await page.click(`#delivery-${unknown} .actions a`);
    await page.waitForURL(/\/retry$/);
    expect(await page.locator('#duplicate-warning').textContent()).toContain('may already have delivered');
    await shoot(page, 'delivery-retry-unknown');
    // The browser itself will not send the form unconfirmed (required checkbox)...
    await page.click('#retry-form button[type=submit]');
    expect(page.url()).toMatch(/\/retry$/);
    expect(await retriedBy(unknown)).toEqual([]);
    // ...and once confirmed, the retry goes through.
    await page.check('#confirm');
    await page.click('#retry-form button[type=submit]');
    await page.waitForURL(/done=/);
    expect(await retriedBy(unknown)).toEqual([`admin:${op.id}`]);

    await page.goto(`${app.baseUrl}/admin/deliveries?tab=webhooks&status=abandoned`);
    await shoot(page, 'webhooks-abandoned');
    await page.click(`#event-${event} button`);
    await page.waitForURL(/done=/);
    expect(await page.locator('.flash-ok').textContent()).toContain('Queued again');
    expect(await retriedBy(event)).toEqual([`admin:${op.id}`]);
    expect((await app.deps.db.query('SELECT replays FROM webhook_events WHERE id = $1', [event])).rows[0]).toEqual({ replays: 1 });

    const res = await page.goto(`${app.baseUrl}/admin/notices/deliveries/${others}/retry`);
    expect(res!.status()).toBe(403);
    await shoot(page, 'delivery-forbidden');
    expect((await app.deps.db.query('SELECT status FROM notice_deliveries WHERE id = $1', [others])).rows[0]).toEqual({ status: 'failed' });
    // The user's timeline shows the notices and the retries beside the link.
    await page.goto(`${app.baseUrl}/admin/identities/${s.powerUser.identityId}`);
    const timeline = await page.locator('#timeline').textContent();
    expect(timeline).toContain('An admin retried a notice');
    expect(timeline).toContain('Linked an account');
    expect(timeline).toMatch(/Notice (queued|sending|sent|delivered|failed)/);
    await shoot(page, 'identity-timeline');
    expect(cspErrors).toEqual([]);
    await page.context().close();
  });

  it('When an unscoped admin walks the other pages, then each renders at 375 px and on a desktop without CSP errors', async () => {
    const root = await makeAdmin(app, { role: 'admin' });
    const page = await open('desktop');
    await signIn(page, root);
    const pages: [string, string][] = [
      ['search', `/admin/search?q=${s.cardUser.openid}`],
      ['deliveries', '/admin/deliveries'],
      ['webhooks', '/admin/deliveries?tab=webhooks'],
      ['keys', '/admin/keys'],
      ['merchants', '/admin/merchants'],
      ['merchant', '/admin/merchants/card'],
      ['admins', '/admin/admins'],
      ['account', '/admin/account'],
      ['link-new', '/admin/bindings/new'],
      ['client-new', '/admin/merchants/card/clients/new'],
    ];
    for (const [name, path] of pages) {
      const r = await page.goto(app.baseUrl + path);
      expect(r!.status(), path).toBe(200);
      // No horizontal scrolling at 375 px: the layout fits the phone.
      await page.setViewportSize(PHONE);
      expect(await page.evaluate<number>('document.documentElement.scrollWidth'), path).toBeLessThanOrEqual(PHONE.width);
      await shoot(page, name);
    }
    expect(cspErrors).toEqual([]);
    await page.context().close();
  });
});
