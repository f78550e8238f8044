/**
 * Three wxbridge instances behind one port (issue 9): a round-robin HTTP proxy in front,
 * one PostgreSQL and one Redis shared (with DATABASE_URL / REDIS_URL: a pool and a Redis
 * client per instance on the same schema and key prefix; embedded: the three in-process apps
 * share one PGlite and one Kv), and one sandbox as WeChat pushing to the proxy. Every
 * request — every hop of a login, every push, every API call — may land on another
 * instance. Users log in, link an account by scanning a binding-code QR (a push), the
 * merchant's H5 exchanges a code for a token, the merchant sends notices, users chat; all at
 * once. Then WeChat's access token expires and a second wave goes out.
 *
 * The results must be those of one instance: one session, identity and binding per user, a
 * token naming the right account, every notice at WeChat exactly once and delivered, every
 * push acknowledged; and one access-token fetch per expiry for the three together.
 */
import { createHash, randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/sandbox.ts';
import { Browser } from '../linking/helpers.ts';
import { APP_ID, BACKEND, H5, startCluster, type Cluster } from './cluster.ts';
import type { RoundRobin } from './round-robin.ts';

const USERS = Number(process.env.MULTI_USERS ?? 8);

let cluster: Cluster;
let sandbox: Sandbox;
let proxy: RoundRobin;
beforeAll(async () => {
  cluster = await startCluster();
  ({ sandbox, proxy } = cluster);
  console.log(`[multi] three instances on ${cluster.mode}, behind ${proxy.url}`);
}, 300_000);
afterAll(async () => {
  await cluster?.close();
});

const basic = (c: { id: string; secret: string }) => `Basic ${Buffer.from(`${c.id}:${c.secret}`).toString('base64')}`;
const tokenFetches = () => sandbox.calls().filter((c) => c.appId === APP_ID && (c.path === '/cgi-bin/stable_token' || c.path === '/cgi-bin/token') && c.errcode === 0).length;

async function backendToken(): Promise<string> {
  const r = await fetch(`${proxy.url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(BACKEND) },
    body: 'grant_type=client_credentials',
  });
  expect(r.status).toBe(200);
  return ((await r.json()) as { access_token: string }).access_token;
}

/** One user's whole journey, every hop through the proxy. */
async function journey(bearer: string, i: number) {
  const user = sandbox.createUser({ followsApps: [APP_ID] });
  const b = new Browser(proxy.url);
  // Login: our redirect to WeChat, WeChat's authorize, the callback (another instance, likely).
  const start = await b.get('/wechat/login?merchant=card&next=/link/card');
  expect(start.status).toBe(302);
  const auth = new URL(start.location!.replace('#wechat_redirect', ''));
  const granted = sandbox.authorize({ appid: auth.searchParams.get('appid')!, redirect_uri: auth.searchParams.get('redirect_uri')!, scope: auth.searchParams.get('scope')!, state: auth.searchParams.get('state')!, userId: user.userId });
  const cb = new URL(granted.location);
  const landed = await b.get(cb.pathname + cb.search);
  expect(landed.status).toBe(302);
  expect(landed.location).toBe('/link/card');
  expect(b.jar.has('wxb_sess')).toBe(true);
  // Linking: the merchant makes a binding-code QR; the user scans it in WeChat (a push).
  const account = `6222${String(i).padStart(4, '0')}${randomBytes(4).toString('hex')}`;
  const made = await fetch(`${proxy.url}/api/v1/binding-codes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
    body: JSON.stringify({ account, display: `•••• ${account.slice(-4)}`, qr: true }),
  });
  expect(made.status).toBe(201);
  const ticket = new URL(((await made.json()) as { qrUrl: string }).qrUrl).searchParams.get('ticket')!;
  const scan = await sandbox.act(APP_ID, user.userId, { type: 'scan', ticket });
  // The user chats too: more pushes, to whichever instance.
  const chats = await Promise.all([1, 2].map(() => sandbox.act(APP_ID, user.userId, { type: 'text', content: '你好' })));
  // The merchant's H5: authorization code with PKCE, exchanged for a token.
  const verifier = randomBytes(32).toString('base64url');
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: H5.id,
    redirect_uri: H5.redirect,
    scope: 'openid',
    state: `s${i}`,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  });
  const authz = await b.get(`/oauth2/authorize?${q}`);
  const code = authz.location ? new URL(authz.location, proxy.url).searchParams.get('code') : null;
  const tokenRes = await fetch(`${proxy.url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(H5) },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: code ?? '', redirect_uri: H5.redirect, code_verifier: verifier }).toString(),
  });
  const token = ((await tokenRes.json()) as { access_token?: string }).access_token;
  return { user, account, scan, chats, authzStatus: authz.status, tokenStatus: tokenRes.status, claims: token ? decodeJwt(token) : null };
}

async function notice(bearer: string, account: string, marker: string): Promise<number> {
  const r = await fetch(`${proxy.url}/api/v1/notices`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': marker, authorization: `Bearer ${bearer}` },
    body: JSON.stringify({ to: { account }, template: 'payment_posted', data: { merchant: marker, amount: '¥1.00', time: '2025-01-01 12:00' } }),
  });
  await r.arrayBuffer();
  return r.status;
}

const sentPerMarker = () => {
  const m = new Map<string, number>();
  for (const msg of sandbox.messages({ appId: APP_ID })) {
    const marker = String((msg.payload.data as Record<string, { value: string }> | undefined)?.thing1?.value ?? '');
    m.set(marker, (m.get(marker) ?? 0) + 1);
  }
  return m;
};

async function settled(markers: string[], timeoutMs: number): Promise<Map<string, string>> {
  const t0 = Date.now();
  const statuses = async () =>
    new Map(
      (
        await cluster.db.query<{ key: string; status: string }>(`SELECT n.idempotency_key AS key, d.status FROM notice_deliveries d JOIN notices n ON n.id = d.notice_id WHERE n.idempotency_key = ANY($1::text[])`, [
          markers,
        ])
      ).rows.map((r) => [r.key, r.status]),
    );
  let s = await statuses();
  while (Date.now() - t0 < timeoutMs && [...s.values()].some((x) => x !== 'delivered')) {
    await new Promise((r) => setTimeout(r, 200));
    s = await statuses();
  }
  await sandbox.idle();
  return s;
}

describe('three instances behind one round-robin port', () => {
  it(`When ${USERS} users log in, link by QR, get tokens and notices while chatting, all at once, then the results are one instance's and the access token is fetched once`, async () => {
    const bearer = await backendToken();
    const t0 = Date.now();
    const results = await Promise.all(
      Array.from({ length: USERS }, async (_, i) => {
        const r = await journey(bearer, i);
        const marker = `a${i}-${randomBytes(3).toString('hex')}`;
        return { ...r, marker, noticeStatus: await notice(bearer, r.account, marker) };
      }),
    );
    const wave1 = await settled(
      results.map((r) => r.marker),
      30_000,
    );
    const fetchesAfterWave1 = tokenFetches();

    // WeChat's access token expires: its clock moves past the token's 2 h while a second wave
    // of notices goes out, then back (WeChat signs pushes with its clock, and a push 2 h in the
    // future is stale to us; the delivery reports are held until the clock is back).
    sandbox.setLimits({ templateFinishDelayMs: 10_000 });
    const jump = 7_200_000 + 60_000;
    sandbox.advanceClock(jump);
    const wave2Markers = results.map((_, i) => `b${i}-${randomBytes(3).toString('hex')}`);
    const wave2Status = await Promise.all(results.map((r, i) => notice(bearer, r.account, wave2Markers[i]!)));
    for (let t = Date.now(); Date.now() - t < 9_000 && wave2Markers.some((m) => !sentPerMarker().has(m)); ) await new Promise((r) => setTimeout(r, 100));
    sandbox.advanceClock(-jump);
    const wave2 = await settled(wave2Markers, 30_000);
    const per = sentPerMarker();
    const pushes = sandbox.pushes({ appId: APP_ID });
    const rows = (
      await cluster.db.query<{ identities: number; bindings: number }>(
        `SELECT (SELECT count(*)::int FROM identities WHERE app_id = $1) AS identities, (SELECT count(*)::int FROM bindings WHERE merchant_id = 'card' AND status = 'active') AS bindings`,
        [APP_ID],
      )
    ).rows[0]!;
    const summary = {
      mode: cluster.mode,
      users: USERS,
      ms: Date.now() - t0,
      served: proxy.served,
      identities: rows.identities,
      bindings: rows.bindings,
      tokens: results.filter((r) => r.tokenStatus === 200).length,
      pushes: pushes.length,
      pushesFailed: pushes.filter((p) => !p.ok).length,
      // (Template notices only: the '' marker gathers customer-service replies.)
      noticesOnce: [...per].filter(([m, n]) => m && n === 1).length,
      noticesTwice: [...per].filter(([m, n]) => m && n > 1).length,
      tokenFetches: { wave1: fetchesAfterWave1, afterExpiry: tokenFetches() },
    };
    console.log(`[multi] ${JSON.stringify(summary)}`);

    // Every instance served: the round robin really spread the work.
    expect(proxy.served.filter((n) => n > 0)).toHaveLength(3);
    // One instance's results: per user one identity, one binding, a token for that account.
    expect(rows.identities).toBe(USERS);
    expect(rows.bindings).toBe(USERS);
    for (const r of results) {
      expect(r.scan.ok).toBe(true);
      for (const c of r.chats) expect(c.ok).toBe(true);
      expect(r.tokenStatus).toBe(200);
      expect(r.claims).toMatchObject({ account: r.account, client_id: H5.id });
      expect(r.noticeStatus).toBe(202);
    }
    expect(summary.pushesFailed).toBe(0);
    // Every notice at WeChat exactly once, and delivered (its TEMPLATESENDJOBFINISH came back through the proxy).
    for (const m of [...results.map((r) => r.marker), ...wave2Markers]) expect(per.get(m), m).toBe(1);
    expect([...wave1.values(), ...wave2.values()].every((s) => s === 'delivered')).toBe(true);
    expect(wave2Status.every((s) => s === 202)).toBe(true);
    // One access-token fetch for the three instances, and one more after it expired.
    expect(fetchesAfterWave1).toBe(1);
    expect(tokenFetches()).toBe(2);
  }, 180_000);
});
