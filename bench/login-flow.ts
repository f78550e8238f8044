/**
 * The merchant login flow through a production-mode bridge, as a WeChat browser and the
 * merchant's backend make it: authorize → /wechat/login → WeChat's authorize page (the
 * sandbox, where the already-linked user allows at once, as snsapi_base does silently) →
 * callback (state consumed, code exchanged with the sandbox, identity upserted) → back to
 * authorize → a code at the merchant's redirect_uri → POST /oauth2/token with PKCE.
 *
 * `withToken: false` stops at the code: the flow of SECURITY.md T1 (authorize and callback,
 * no token request). `hops`, when given, collects each of the bridge's answers by path.
 */
import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Jar, location, step } from './lib/flow-driver.ts';
import { BENCH, basicAuth, type SandboxProc } from './lib/stack.ts';

const WECHAT_UA =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2f) NetType/WIFI Language/zh_CN';

/** Latency of the bridge's answers by path (ms), for SECURITY.md T2's per-endpoint p99. */
export class HopTimes {
  private byPath = new Map<string, number[]>();
  add(path: string, ms: number): void {
    let a = this.byPath.get(path);
    if (!a) this.byPath.set(path, (a = []));
    a.push(ms);
  }
  clear(): void {
    this.byPath.clear();
  }
  /** "path p50/p99 ms (n)" for each path, in the order first seen. */
  summary(): string {
    return [...this.byPath]
      .map(([path, a]) => {
        a.sort((x, y) => x - y);
        const pct = (p: number) => (a[Math.min(a.length - 1, Math.floor(a.length * p))] ?? 0).toFixed(1);
        return `${path} ${pct(0.5)}/${pct(0.99)}`;
      })
      .join(', ');
  }
}

export interface FlowOptions {
  withToken?: boolean;
  hops?: HopTimes;
}

/** One flow per call, cycling through `userIds` (all linked to exactly one account, so no chooser). */
export function bridgeLoginFlow(bridgeUrl: string, sandbox: SandboxProc, userIds: readonly string[], opts: FlowOptions = {}): () => Promise<void> {
  const { withToken = true, hops } = opts;
  const h5Auth = basicAuth(BENCH.h5.clientId, BENCH.h5.secret);
  const headers = { 'user-agent': WECHAT_UA, accept: 'text/html' };
  const ours = (url: string) => new URL(url).origin === new URL(bridgeUrl).origin;
  /** One of our hops; an unexpected answer names the path (never the query: it carries codes). */
  const hop = async (jar: Jar, url: string): Promise<string> => {
    const t0 = performance.now();
    const res = await step(jar, url, { headers });
    hops?.add(new URL(url).pathname, performance.now() - t0);
    if (res.status < 300 || res.status >= 400) throw new Error(`${new URL(url).pathname}: ${res.status} ${(await res.text()).slice(0, 200)}`);
    return location(res, bridgeUrl);
  };
  let next = 0;
  return async () => {
    const userId = userIds[next++ % userIds.length]!;
    const jar = new Jar();
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: BENCH.h5.clientId,
      redirect_uri: BENCH.h5.redirectUri,
      scope: 'openid',
      state: randomBytes(8).toString('hex'),
      nonce: randomBytes(8).toString('hex'),
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    let url = `${bridgeUrl}/oauth2/authorize?${q}`;
    // Our hops up to WeChat's authorize page.
    for (let i = 0; i < 4 && ours(url); i++) url = await hop(jar, url);
    if (new URL(url).origin !== new URL(sandbox.url).origin) throw new Error(`expected WeChat's authorize page, got ${url.slice(0, 80)}`);
    const wx = new URL(url.replace('#wechat_redirect', '')).searchParams;
    const { location: callback } = await sandbox.control<{ location: string }>('/authorize', {
      appid: wx.get('appid'),
      redirect_uri: wx.get('redirect_uri'),
      scope: wx.get('scope'),
      state: wx.get('state'),
      userId,
    });
    url = callback;
    for (let i = 0; i < 4 && ours(url); i++) url = await hop(jar, url);
    if (!url.startsWith(BENCH.h5.redirectUri)) throw new Error(`expected the merchant's redirect_uri, got ${url.slice(0, 80)}`);
    const code = new URL(url).searchParams.get('code');
    if (!code) throw new Error(`no code: ${url.slice(0, 120)}`);
    if (!withToken) return;
    const t0 = performance.now();
    const tok = await fetch(`${bridgeUrl}/oauth2/token`, {
      method: 'POST',
      headers: { authorization: h5Auth, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: BENCH.h5.redirectUri, code_verifier: verifier }),
    });
    if (tok.status !== 200) throw new Error(`token ${tok.status}: ${(await tok.text()).slice(0, 200)}`);
    const body = (await tok.json()) as { access_token?: string; id_token?: string };
    hops?.add('/oauth2/token', performance.now() - t0);
    if (!body.access_token || !body.id_token) throw new Error('token response without access_token or id_token');
  };
}
