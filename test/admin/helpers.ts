/**
 * Helpers for admin tests: a moving clock (TOTP codes are single-use per 30 s step, so
 * each sign-in moves time on), accounts made through the real services, and a tiny
 * cookie-keeping HTTP client that fills in the CSRF token the last page carried.
 */
import { pino } from 'pino';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { hashSecret } from '../../src/security/secrets.ts';
import * as A from '../../src/admin/accounts.queries.ts';
import { createAdminServices, type AdminServices } from '../../src/admin/services.ts';
import { totpContext } from '../../src/admin/signin.service.ts';
import { newTotpSecret, totpCode } from '../../src/admin/totp.ts';
import type { Role } from '../../src/admin/policy.ts';
import type { LinkingFeature } from '../../src/linking/index.ts';
import type { OAuthFeature } from '../../src/oauth/index.ts';
import { DEMO_ACCOUNT } from '../../src/config/demo.ts';

export interface Clock {
  now: number;
  advance(ms: number): void;
}

export function createClock(): Clock {
  const c = { now: Date.now(), advance: (ms: number) => void (c.now += ms) };
  return c;
}

export interface AdminTestApp extends TestApp {
  clock: Clock;
  admin: AdminServices;
}

export async function startAdminApp(opts: { env?: Record<string, string> } = {}): Promise<AdminTestApp> {
  const clock = createClock();
  const app = await startTestApp({ ...opts, overrides: { now: () => clock.now } });
  const d = app.deps;
  const admin = createAdminServices({ config: d.config, db: d.db, kv: d.kv, log: pino({ level: 'silent' }), now: d.now, secrets: d.secrets });
  return Object.assign(app, { clock, admin });
}

export interface TestAdmin {
  id: string;
  email: string;
  password: string;
  totpSecret: string;
}

let seq = 0;
/** A ready account: own password set, TOTP enrolled (as after a first sign-in). */
export async function makeAdmin(app: AdminTestApp, p: { role: Role; merchantId?: string | null; email?: string; enrolled?: boolean }): Promise<TestAdmin> {
  const email = p.email ?? `admin${++seq}-${Date.now()}@example.com`;
  const made = await app.admin.accounts.create({ email, role: p.role, merchantId: p.merchantId ?? null, who: { actor: 'system:test', source: 'test' } });
  const password = `correct horse ${seq} battery`;
  const now = new Date(app.clock.now);
  await A.setPassword(app.deps.db, made.account.id, await hashSecret(password), false, now);
  const totpSecret = newTotpSecret();
  await A.setPendingTotp(app.deps.db, made.account.id, app.deps.secrets.seal(totpSecret, totpContext(made.account.id)), now);
  if (p.enrolled !== false) await app.deps.db.query('UPDATE admin_accounts SET totp_enabled_at = now() WHERE id = $1', [made.account.id]);
  return { id: made.account.id, email, password, totpSecret };
}

/** The next step's code: time moves 30 s on, so no code is ever reused. */
export function nextCode(app: AdminTestApp, secret: string): string {
  app.clock.advance(30_000);
  return totpCode(secret, app.clock.now);
}

export interface Res {
  status: number;
  location: string | null;
  text: string;
  headers: Headers;
}

/** Keeps cookies like a browser would (same origin only) and remembers the last CSRF token seen. */
export class Client {
  cookies = new Map<string, string>();
  csrf = '';
  constructor(readonly base: string) {}

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private keep(r: Response): void {
    for (const c of r.headers.getSetCookie()) {
      const [pair = ''] = c.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i);
      const value = pair.slice(i + 1);
      if (value === '' || /max-age=0|expires=Thu, 01 Jan 1970/i.test(c)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async request(method: string, path: string, body?: Record<string, string>, headers: Record<string, string> = {}): Promise<Res> {
    const r = await fetch(this.base + path, {
      method,
      redirect: 'manual',
      headers: { cookie: this.cookieHeader(), accept: 'text/html', ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), ...headers },
      body: body ? new URLSearchParams(body).toString() : undefined,
    });
    this.keep(r);
    const text = await r.text();
    const m = /name="_csrf" value="([^"]+)"/.exec(text);
    if (m?.[1]) this.csrf = m[1];
    return { status: r.status, location: r.headers.get('location'), text, headers: r.headers };
  }

  get = (path: string) => this.request('GET', path);
  /** Posts a form with the remembered CSRF token (unless the fields give their own). */
  post = (path: string, fields: Record<string, string> = {}) => this.request('POST', path, { _csrf: this.csrf, ...fields });

  /** Follows redirects with GET, as a browser does after a 303. */
  async follow(r: Res, max = 5): Promise<Res> {
    let cur = r;
    for (let i = 0; i < max && cur.location; i++) cur = await this.get(new URL(cur.location, this.base).pathname + new URL(cur.location, this.base).search);
    return cur;
  }
}

/** Signs `who` in through the real pages; returns the client holding the session. */
export async function signIn(app: AdminTestApp, who: TestAdmin): Promise<Client> {
  const c = new Client(app.baseUrl);
  await c.get('/admin/login');
  const r1 = await c.post('/admin/login', { email: who.email, password: who.password });
  if (r1.status !== 303) throw new Error(`password step: ${r1.status}`);
  await c.follow(r1);
  const r2 = await c.post('/admin/login/code', { code: nextCode(app, who.totpSecret) });
  if (r2.status !== 303) throw new Error(`code step: ${r2.status}`);
  return c;
}


export const linkingOf = (app: TestApp) => app.deps.features.find((f) => f.name === 'linking') as LinkingFeature;
export const oauthOf = (app: TestApp) => app.deps.features.find((f) => f.name === 'oauth') as OAuthFeature;

export interface Seeded {
  cardUser: { identityId: string; openid: string; bindingId: string };
  powerUser: { identityId: string; openid: string; bindingId: string };
}

let users = 0;
/** One WeChat user linked at `card`, another at `power` (the demo merchants), linked as a user would be. */
export async function seed(app: TestApp): Promise<Seeded> {
  const linking = linkingOf(app).service;
  const make = async (merchantId: string, account: string, display: string) => {
    const openid = `o${merchantId}User${++users}x${Date.now().toString(36)}`;
    const i = await linking.upsertFromLogin({ appId: DEMO_ACCOUNT.appId, openid, profile: { nickname: `${merchantId} user ${users}`, avatarUrl: '' } });
    const res = await linking.link({ merchantId, identityId: i.id, account: { id: account, display }, proof: 'verify-api', actor: `user:${i.id}`, source: 'web' });
    if (!res.ok) throw new Error(`seed link refused: ${res.reason}`);
    return { identityId: i.id, openid, bindingId: res.binding.id };
  };
  const n = users;
  return {
    cardUser: await make('card', `6222-${1000 + n}`, `**** ${1000 + n}`),
    powerUser: await make('power', `P-${5000 + n}`, `户号 ${5000 + n}`),
  };
}

/** An access token for a binding, as the token endpoint would issue it, and its introspection by the merchant's backend. */
export async function tokenFor(app: TestApp, b: { bindingId: string; identityId: string }): Promise<string> {
  const linking = linkingOf(app).service;
  const binding = (await linking.getBinding(b.bindingId))!;
  const sub = await linking.subjectFor(b.identityId, binding.merchantId);
  const t = await oauthOf(app).tokens.issueAccessToken({
    merchantId: binding.merchantId,
    clientId: 'card-h5',
    sub,
    scopes: ['openid'],
    ttlSeconds: 600,
    binding: { id: binding.id, accountId: binding.accountId, accountDisplay: binding.accountDisplay },
  });
  return t.token;
}

export async function introspect(app: TestApp, token: string): Promise<{ active: boolean }> {
  const r = await fetch(`${app.baseUrl}/oauth2/introspect`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from('card-backend:demo-card-backend-secret').toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
  });
  return (await r.json()) as { active: boolean };
}

/** beforeAll budget: the whole app (every feature, migrations, first keys) starts slowly on a busy 2-core box. */
export const START_TIMEOUT = 180_000;
