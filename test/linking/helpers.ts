/**
 * A small HTTP "browser" for the linking tests: a cookie jar per instance, redirects
 * followed by hand (so each hop can be checked), and the WeChat-side steps done through
 * the sandbox's JSON control API as the person in front of the phone would.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { expect } from 'vitest';
import type { LinkingFeature } from '../../src/linking/index.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

export const DESKTOP_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36';

export const WECHAT_UA =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2f) NetType/WIFI Language/zh_CN';

export interface Res {
  status: number;
  location: string | null;
  text: string;
  headers: Headers;
}

export class Browser {
  readonly jar = new Map<string, string>();
  constructor(
    readonly base: string,
    readonly ua = WECHAT_UA,
  ) {}

  cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private store(h: Headers): void {
    for (const c of h.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      if (value === '' || /max-age=0|expires=Thu, 01 Jan 1970/i.test(c)) this.jar.delete(name);
      else this.jar.set(name, value);
    }
  }

  async request(path: string, init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Res> {
    const url = path.startsWith('http') ? path : `${this.base}${path}`;
    const headers: Record<string, string> = { 'user-agent': this.ua, accept: 'text/html', cookie: this.cookieHeader(), ...init.headers };
    let body: string | undefined;
    if (init.form) {
      body = new URLSearchParams(init.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const r = await fetch(url, { method: init.method ?? (init.form ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    this.store(r.headers);
    return { status: r.status, location: r.headers.get('location'), text: await r.text(), headers: r.headers };
  }

  get(path: string): Promise<Res> {
    return this.request(path);
  }

  post(path: string, form: Record<string, string>): Promise<Res> {
    return this.request(path, { form });
  }

  /** Follows same-site redirects until a page (or an off-site hop, returned as is). */
  async follow(res: Res, max = 10): Promise<Res> {
    let r = res;
    for (let i = 0; i < max && r.location && r.status >= 300 && r.status < 400; i++) {
      const next = new URL(r.location, this.base);
      if (next.origin !== new URL(this.base).origin) return r;
      r = await this.get(next.pathname + next.search);
    }
    return r;
  }
}

/** A hidden input's value from a rendered page. */
export function field(html: string, name: string): string {
  const m = new RegExp(`name="${name}"[^>]*value="([^"]*)"`).exec(html) ?? new RegExp(`value="([^"]*)"[^>]*name="${name}"`).exec(html);
  if (!m?.[1]) throw new Error(`no field ${name} in page`);
  return m[1].replace(/&amp;/g, '&').replace(/&#39;/g, "'").replace(/&quot;/g, '"');
}

export async function control<T = unknown>(app: TestApp, path: string, body?: unknown): Promise<T> {
  const r = await fetch(`${app.baseUrl}/sandbox/control${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await r.json()) as T;
  if (r.status >= 300) throw new Error(`control ${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}

export async function newWeChatUser(app: TestApp, over: Record<string, unknown> = {}): Promise<{ userId: string }> {
  return control(app, '/users', over);
}

/** What WeChat does with our authorize URL for this user: returns the callback URL (code + state, or state only). */
export async function authorizeAt(app: TestApp, authorizeUrl: string, userId: string, decision: 'allow' | 'decline' = 'allow'): Promise<string> {
  const u = new URL(authorizeUrl.replace('#wechat_redirect', ''));
  const out = await control<{ location: string }>(app, '/authorize', {
    appid: u.searchParams.get('appid'),
    redirect_uri: u.searchParams.get('redirect_uri'),
    scope: u.searchParams.get('scope'),
    state: u.searchParams.get('state'),
    userId,
    decision,
  });
  return out.location;
}

/** `GET /wechat/login` in a WeChat browser: the authorize URL it redirects to. */
export async function startLogin(b: Browser, merchant: string, next?: string): Promise<string> {
  const r = await b.get(`/wechat/login?merchant=${merchant}${next ? `&next=${encodeURIComponent(next)}` : ''}`);
  expect(r.status).toBe(302);
  expect(r.location).toContain('/connect/oauth2/authorize?');
  return r.location!;
}

/** Logs the browser in as this WeChat user (every authorization round), ending where `next` points. */
export async function loginAs(app: TestApp, b: Browser, merchant: string, userId: string, next?: string): Promise<Res> {
  let authorize = await startLogin(b, merchant, next);
  for (let round = 0; round < 3; round++) {
    const cb = new URL(await authorizeAt(app, authorize, userId));
    const r = await b.get(cb.pathname + cb.search);
    if (r.status === 302 && r.location?.includes('/connect/oauth2/authorize?')) {
      authorize = r.location;
      continue;
    }
    return r;
  }
  throw new Error('too many authorization rounds');
}

/** The verify-api pages end to end: first field(s), then the SMS code. Returns the last response. */
export async function verifyAccount(b: Browser, merchant: string, first: Record<string, string>, sms = '123456'): Promise<Res> {
  const start = await b.get(`/link/${merchant}/verify`);
  if (start.status !== 200 || !start.text.includes('name="proof"')) return start;
  const step1 = await b.post(`/link/${merchant}/verify`, { _csrf: field(start.text, '_csrf'), proof: field(start.text, 'proof'), ...first });
  if (step1.status !== 200 || !step1.text.includes('name="sms"')) return step1;
  return b.post(`/link/${merchant}/verify`, { _csrf: field(step1.text, '_csrf'), proof: field(step1.text, 'proof'), sms });
}

/** The `oidc` proof against the demo IdP: every hop of the round trip, same origin. */
export async function linkWithOidc(b: Browser, merchant: string, username: string, password = 'demo'): Promise<Res> {
  const login = await b.follow(await b.get(`/link/${merchant}/oidc`));
  if (!login.text.includes('name="username"')) return login;
  const action = /action="([^"]+\/login)"/.exec(login.text)?.[1];
  if (!action) throw new Error('no login form');
  const done = await b.post(action, { _csrf: field(login.text, '_csrf'), username, password });
  if (done.status !== 303) return done;
  // The IdP's resume hop, then our callback; stop at the callback's redirect so the flash is visible.
  let r = done;
  for (let i = 0; i < 5 && r.location; i++) {
    const next = new URL(r.location, b.base);
    if (next.pathname === `/link/${merchant}`) break;
    r = await b.get(next.pathname + next.search);
  }
  return r;
}

let cardSeq = 0;
/** A demo card number no other test uses (any 16 digits starting 6222 are demo cards). */
export function freshCard(): string {
  cardSeq += 1;
  return `6222${String(process.pid % 10000).padStart(4, '0')}${String(Date.now() % 10000).padStart(4, '0')}${String(cardSeq).padStart(4, '0')}`;
}

/** Starting an app (embedded Postgres, migrations, keys) on a busy 2-core machine can take a while. */
export const BOOT_TIMEOUT_MS = 180_000;

/** An app logger whose JSON lines are kept in `lines` (to check what is, and is not, logged). */
export function capturedLogger(level: string): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(chunk.toString()), cb()) });
  return { log: pino({ level }, sink), lines };
}

/** Starts the app and finds its linking feature. */
export async function startLinkingApp(opts: Parameters<typeof startTestApp>[0] = {}): Promise<{ app: TestApp; linking: LinkingFeature }> {
  const app = await startTestApp(opts);
  return { app, linking: app.deps.features.find((f) => f.name === 'linking') as LinkingFeature };
}

/** The website QR login's test world: merchant `site` on an account with a website app, `plain` on one without. */
export const WEBSITE_LOGIN = { oaAppId: 'wx00000000000000ws', webAppId: 'wx000000000000web1' } as const;

/** An app (sandbox on) configured for the website QR login of wechat-protocol.md §1.10. */
export async function startWebsiteLoginApp(): Promise<TestApp> {
  const file = join(mkdtempSync(join(tmpdir(), 'wxb-website-')), 'config.json');
  writeFileSync(
    file,
    JSON.stringify({
      // The merchants' backends here listen on loopback, which the outbound policy refuses by default.
      outbound: { allowPrivateNetworks: true },
      officialAccounts: [
        {
          id: 'oa',
          appId: WEBSITE_LOGIN.oaAppId,
          appSecret: 'website-oa-secret',
          token: 'tok123',
          originalId: 'gh_0000000000ws',
          websiteApp: { appId: WEBSITE_LOGIN.webAppId, appSecret: 'website-app-secret' },
        },
        { id: 'oa2', appId: 'wx00000000000000w2', appSecret: 'website-oa2-secret', token: 'tok123', originalId: 'gh_0000000000w2' },
      ],
      merchants: [
        { id: 'site', name: '网站商户 Site', officialAccount: 'oa', profile: 'userinfo', linking: [{ type: 'binding-code' }] },
        { id: 'plain', name: '普通商户 Plain', officialAccount: 'oa2', linking: [{ type: 'binding-code' }] },
      ],
    }),
  );
  return startTestApp({ env: { BRIDGE_CONFIG: file, SANDBOX: '1' } });
}
