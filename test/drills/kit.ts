/**
 * The fault drills' world (issue 9; SECURITY.md D1, D2, D5): the real app in demo mode with
 * its mounted sandbox as WeChat, whose PostgreSQL and Redis can be taken down and brought
 * back — through TCP proxies when DATABASE_URL and REDIS_URL are set, through wrappers over
 * PGlite and the in-process Kv otherwise (test/helpers/cuttable.ts) — and the four things a
 * user or merchant does, each timed: a WeChat login callback, an authorization-code grant,
 * a notice, a push. The CI tests (test/drills/*.test.ts) and `npm run drills` share it.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { DEMO_ACCOUNT, DEMO_SECRETS } from '../../src/config/demo.ts';
import type { LinkingFeature } from '../../src/linking/index.ts';
import type { Sandbox } from '../../src/sandbox/sandbox.ts';
import { createMemoryKv } from '../../src/store/kv-memory.ts';
import { createMessageCipher, sha1Sorted } from '../../src/wechat/crypto.ts';
import { buildWeChatXml } from '../../src/wechat/xml.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { cuttableDb, cuttableKv, type Switch } from '../helpers/cuttable.ts';
import { createSchemaDb, DATABASE_URL, dbFactories, REDIS_URL } from '../helpers/stores.ts';
import { hostPort, startTcpProxy, viaProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { authorizeAt, Browser, field, loginAs, startLogin } from '../linking/helpers.ts';

export const REAL = Boolean(DATABASE_URL && REDIS_URL);

export interface DrillApp {
  app: TestApp;
  sandbox: Sandbox;
  linking: LinkingFeature;
  /** Take PostgreSQL / Redis down and back. */
  db: Switch;
  kv: Switch;
  mode: string;
  close(): Promise<void>;
}

const proxySwitch = (p: TcpProxy): Switch => {
  let down = false;
  return {
    cut: () => ((down = true), p.cut()),
    restore: () => ((down = false), p.restore()),
    get down() {
      return down;
    },
  };
};

export async function startDrillApp(): Promise<DrillApp> {
  if (REAL) {
    const pgProxy = await startTcpProxy(hostPort(DATABASE_URL!, 5432));
    const redisProxy = await startTcpProxy(hostPort(REDIS_URL!, 6379));
    const db = await createSchemaDb(viaProxy(DATABASE_URL!, pgProxy.port));
    const app = await startTestApp({ env: { REDIS_URL: viaProxy(REDIS_URL!, redisProxy.port) }, overrides: { db } });
    return {
      app,
      sandbox: app.deps.wechat.sandbox as Sandbox,
      linking: app.deps.features.find((f) => f.name === 'linking') as LinkingFeature,
      db: proxySwitch(pgProxy),
      kv: proxySwitch(redisProxy),
      mode: 'PostgreSQL + Redis behind cut TCP proxies',
      async close() {
        pgProxy.restore();
        redisProxy.restore();
        await app.stop();
        await db.close().catch(() => undefined);
        await pgProxy.close();
        await redisProxy.close();
      },
    };
  }
  const pglite = await dbFactories[0]!.create();
  const db = cuttableDb(pglite);
  const kv = cuttableKv(createMemoryKv());
  const app = await startTestApp({ overrides: { db: db.db, kv: kv.kv } });
  return {
    app,
    sandbox: app.deps.wechat.sandbox as Sandbox,
    linking: app.deps.features.find((f) => f.name === 'linking') as LinkingFeature,
    db: db.switch,
    kv: kv.switch,
    mode: 'PGlite + in-process Kv behind refusing wrappers',
    async close() {
      db.switch.restore();
      kv.switch.restore();
      await app.stop();
      await pglite.close();
      await kv.kv.close();
    },
  };
}

export interface Timed<T> {
  value: T;
  ms: number;
}
export async function timed<T>(fn: () => Promise<T>): Promise<Timed<T>> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: Math.round(performance.now() - t0) };
}

/** Polls until `fn` holds; returns how long it took, or null after `timeoutMs`. */
export async function until(fn: () => Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<number | null> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if (await fn().catch(() => false)) return Math.round(performance.now() - t0);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return null;
}

export const readyz = async (d: DrillApp) => (await fetch(`${d.app.baseUrl}/readyz`)).status;
const form = (o: Record<string, string>) => new URLSearchParams(o).toString();
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

export async function clientToken(d: DrillApp): Promise<string> {
  const r = await fetch(`${d.app.baseUrl}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('card-backend', DEMO_SECRETS.cardBackend) },
    body: form({ grant_type: 'client_credentials' }),
  });
  if (r.status !== 200) throw new Error(`client_credentials: ${r.status}`);
  return ((await r.json()) as { access_token: string }).access_token;
}

/** A WeChat user with a linked demo card at `card` and a logged-in browser. */
export interface LinkedUser {
  userId: string;
  openid: string;
  account: string;
  browser: Browser;
}

export async function linkedUser(d: DrillApp): Promise<LinkedUser> {
  // A follower of the demo account (template notices reach followers only).
  const { userId } = d.sandbox.createUser({ followsApps: [DEMO_ACCOUNT.appId] });
  const b = new Browser(d.app.baseUrl);
  const login = await loginAs(d.app, b, 'card', userId);
  if (login.status !== 302) throw new Error(`login: ${login.status}`);
  const openid = d.sandbox.openid(DEMO_ACCOUNT.appId, userId);
  const identity = await d.linking.service.findIdentity(DEMO_ACCOUNT.appId, openid);
  const account = `6222${randomBytes(6).toString('hex').replace(/\D/g, '7').slice(0, 12)}`;
  const r = await d.linking.service.link({ merchantId: 'card', identityId: identity!.id, account: { id: account, display: `•••• ${account.slice(-4)}` }, proof: 'verify-api', actor: 'test', source: 'web' });
  if (!r.ok) throw new Error(`link: ${r.reason}`);
  return { userId, openid, account, browser: b };
}

/** A login that reached WeChat's callback but has not landed yet: the callback URL, in a fresh browser. */
export async function pendingLogin(d: DrillApp, u: LinkedUser): Promise<{ browser: Browser; path: string; state: string }> {
  const b = new Browser(d.app.baseUrl);
  const cb = new URL(await authorizeAt(d.app, await startLogin(b, 'card'), u.userId));
  return { browser: b, path: cb.pathname + cb.search, state: cb.searchParams.get('state')! };
}

export type OpResult = { ok: boolean; status: number; ms: number; detail?: string };

/** The login callback lands: 302 with a session is ok; anything else is refused. */
export async function landLogin(p: { browser: Browser; path: string }): Promise<OpResult> {
  const { value: r, ms } = await timed(() => p.browser.get(p.path));
  return { ok: r.status === 302 && p.browser.jar.has('wxb_sess'), status: r.status, ms, detail: r.status >= 500 && !/暂时|稍后/.test(r.text) ? 'no retry page' : undefined };
}

/** The merchant H5's authorization-code grant for a logged-in, linked user (PKCE S256). */
export async function codeGrant(d: DrillApp, u: LinkedUser): Promise<OpResult & { token?: string }> {
  const verifier = randomBytes(32).toString('base64url');
  const redirectUri = `${d.app.baseUrl}/demo/app/callback`;
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: 'card-h5',
    redirect_uri: redirectUri,
    scope: 'openid',
    state: randomBytes(8).toString('hex'),
    nonce: randomBytes(8).toString('hex'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  });
  const t0 = performance.now();
  let r = await u.browser.get(`/oauth2/authorize?${q}`);
  // An account chooser or consent page: take the first account.
  for (let i = 0; i < 3 && r.status === 200 && r.text.includes('name="_csrf"'); i++) {
    const action = /<form[^>]+action="([^"]+)"/.exec(r.text)?.[1] ?? '/oauth2/authorize/decision';
    const fields: Record<string, string> = { _csrf: field(r.text, '_csrf') };
    for (const m of r.text.matchAll(/<input[^>]+name="([^"]+)"[^>]+value="([^"]*)"/g)) fields[m[1]!] ??= m[2]!;
    for (const m of r.text.matchAll(/<button[^>]+name="([^"]+)"[^>]+value="([^"]*)"/g)) fields[m[1]!] ??= m[2]!;
    r = await u.browser.post(action.replace(/&amp;/g, '&'), fields);
  }
  const location = r.location ? new URL(r.location, d.app.baseUrl) : null;
  const code = location?.origin === new URL(redirectUri).origin && location.pathname === '/demo/app/callback' ? location.searchParams.get('code') : null;
  if (!code) return { ok: false, status: r.status, ms: Math.round(performance.now() - t0), detail: `authorize ${r.status}` };
  const t = await fetch(`${d.app.baseUrl}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('card-h5', DEMO_SECRETS.cardH5) },
    body: form({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }),
  });
  const body = (await t.json()) as { access_token?: string; error?: string };
  return { ok: t.status === 200, status: t.status, ms: Math.round(performance.now() - t0), token: body.access_token, detail: body.error };
}

/** A notice to the user's account; the same key is sent again after a refusal (what a merchant does). */
export async function sendNotice(d: DrillApp, bearer: string, account: string, key: string): Promise<OpResult & { id?: string }> {
  const { value: r, ms } = await timed(() =>
    fetch(`${d.app.baseUrl}/api/v1/notices`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key, authorization: `Bearer ${bearer}` },
      body: JSON.stringify({ to: { account }, template: 'payment_posted', data: { merchant: key, amount: '¥1.00', time: '2025-01-01 12:00' } }),
    }),
  );
  const body = (await r.json().catch(() => ({}))) as { id?: string; error?: string };
  // The error handler's one JSON shape: a stable `error` code and a description.
  const problem = r.status >= 400 && typeof body.error !== 'string' ? 'no error body' : undefined;
  return { ok: r.status === 202, status: r.status, ms, id: body.id, detail: problem };
}

/**
 * A follow (`subscribe`) push of a new user, signed and encrypted as WeChat does for the demo
 * account (safe mode): it has durable work to do before the acknowledgement (the identity and
 * its subscribe state), so "acknowledged" must mean "recorded".
 */
export function subscribePush(d: DrillApp): { url: string; body: string; openid: string } {
  const a = DEMO_ACCOUNT;
  const openid = `oDrill${randomBytes(11).toString('hex')}`;
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = String(randomInt(100_000_000, 2_000_000_000));
  const xml = buildWeChatXml({ ToUserName: a.originalId, FromUserName: openid, CreateTime: Number(timestamp), MsgType: 'event', Event: 'subscribe' });
  const encrypt = createMessageCipher({ appId: a.appId, encodingAesKeys: [a.encodingAesKey] }).encrypt(xml);
  const q = new URLSearchParams({ signature: sha1Sorted(a.token, timestamp, nonce), timestamp, nonce, openid, encrypt_type: 'aes', msg_signature: sha1Sorted(a.token, timestamp, nonce, encrypt) });
  return { url: `${d.app.baseUrl}/wechat/push/${a.id}?${q}`, body: buildWeChatXml({ ToUserName: a.originalId, Encrypt: encrypt }), openid };
}

/** WeChat delivers a push: 2xx is an acknowledgement; anything else and WeChat retries it. */
export async function deliverPush(p: { url: string; body: string }): Promise<OpResult> {
  const { value: r, ms } = await timed(() => fetch(p.url, { method: 'POST', body: p.body, headers: { 'content-type': 'text/xml' } }));
  await r.arrayBuffer();
  return { ok: r.status >= 200 && r.status < 300, status: r.status, ms };
}
