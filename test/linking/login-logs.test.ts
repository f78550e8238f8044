/**
 * The login flow never logs the WeChat code, the raw state, the session id
 * or the appsecret (SECURITY.md A7, ASVS 5.0 16.2.5: "never log: appsecret, … code, the raw
 * state"), on the happy path, a double callback, WeChat busy (-1) and an unexpected errcode.
 * It is the one test that reads the logs of the login callback at debug level.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_ACCOUNT } from '../../src/config/demo.ts';
import type { TestApp } from '../helpers/app.ts';
import { BOOT_TIMEOUT_MS, Browser, authorizeAt, capturedLogger, control, newWeChatUser, startLinkingApp, startLogin } from './helpers.ts';

let app: TestApp;
const { log, lines } = capturedLogger('debug');

beforeAll(async () => {
  ({ app } = await startLinkingApp({ overrides: { log } }));
}, BOOT_TIMEOUT_MS);
afterAll(async () => {
  await app.stop();
});

describe('no secrets in the login flow logs', () => {
  it('When logins succeed, repeat, and fail at WeChat (-1, 40013), then no log line holds a code, a state, a session id or the appsecret', async () => {
    const secrets: string[] = [DEMO_ACCOUNT.appSecret];
    const round = async (fault?: { errcode: number }) => {
      const b = new Browser(app.baseUrl);
      const { userId } = await newWeChatUser(app);
      if (fault) await control(app, '/faults', { path: '/sns/oauth2/access_token', errcode: fault.errcode, count: 1 });
      const cb = new URL(await authorizeAt(app, await startLogin(b, 'power'), userId));
      secrets.push(cb.searchParams.get('code')!, cb.searchParams.get('state')!);
      await Promise.all([b.get(cb.pathname + cb.search), b.get(cb.pathname + cb.search)]);
      const sess = b.jar.get('wxb_sess');
      if (sess) secrets.push(decodeURIComponent(sess));
    };
    await round();
    await round({ errcode: -1 });
    await round({ errcode: 40013 });
    expect(lines.length).toBeGreaterThan(0);
    const all = lines.join('\n');
    for (const s of secrets) expect(all, `log holds ${s.slice(0, 6)}…`).not.toContain(s);
  }, 120_000);
});
