/**
 * Account access tokens (wechat-protocol.md §2, §10 items 2–3).
 * - `cgi-bin/token`: every call mints a new token; the previous one keeps working for
 *   300 s, then answers 40001; past `expires_in` a token answers 42001.
 * - `cgi-bin/stable_token`: the same token for every caller until 300 s before expiry,
 *   then a new one while the old stays valid to its end (overlap); `force_refresh`
 *   kills the current one (20/day, >= 30 s apart, otherwise no refresh happens).
 * - The two families are isolated: minting one never touches the other.
 */
import type { SandboxApp, AccountToken, SandboxState } from './state.ts';
import { takeDaily } from './state.ts';
import { newAccessToken, tokenShape } from './ids.ts';
import { fail } from './wx-response.ts';

export interface Issued {
  access_token: string;
  expires_in: number;
}

/** Real secrets are 32 hex characters; a wrong one of the right shape is 40001, else 40125. */
export function checkCredentials(state: SandboxState, appid: string | undefined, secret: string | undefined): SandboxApp {
  if (!appid) fail(41002);
  const app = state.apps.get(appid);
  if (!app) fail(40013);
  if (!secret) fail(41004);
  if (secret !== app.appSecret) fail(/^[0-9a-f]{32}$/.test(secret) ? 40001 : 40125);
  return app;
}

/** §2.4: the errmsg names the caller IP in both notations. */
function checkIp(app: SandboxApp, ip: string): void {
  if (!app.ipWhitelist) return;
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  if (app.ipWhitelist.includes(v4) || app.ipWhitelist.includes(ip)) return;
  fail(40164, `invalid ip ${v4} ipv6 ::ffff:${v4}, not in whitelist`);
}

function mint(state: SandboxState, appId: string, kind: AccountToken['kind'], now: number): AccountToken {
  const rec: AccountToken = { token: newAccessToken(), appId, kind, issuedAt: now, expiresAt: now + state.limits.tokenTtlSec * 1000 };
  state.accountTokens.set(rec.token, rec);
  return rec;
}

export interface TokenQuery {
  grant_type?: string;
  appid?: string;
  secret?: string;
}

export function issueClassicToken(state: SandboxState, q: TokenQuery, ip: string, now: number): Issued {
  const app = checkCredentials(state, q.appid, q.secret);
  if (q.grant_type !== 'client_credential') fail(40002);
  checkIp(app, ip);
  if (!takeDaily(state, app.appId, 'cgi-bin/token', state.limits.tokenDailyLimit, now)) {
    fail(45009, 'reach max api daily quota limit, could get access_token by getStableAccessToken');
  }
  const previous = state.latestClassic.get(app.appId);
  if (previous && previous.invalidAfter === undefined) previous.invalidAfter = now + state.limits.tokenGraceSec * 1000;
  const rec = mint(state, app.appId, 'classic', now);
  state.latestClassic.set(app.appId, rec);
  return { access_token: rec.token, expires_in: state.limits.tokenTtlSec };
}

export interface StableBody {
  grant_type?: unknown;
  appid?: unknown;
  secret?: unknown;
  force_refresh?: unknown;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function issueStableToken(state: SandboxState, body: StableBody, ip: string, now: number): Issued {
  const app = checkCredentials(state, str(body.appid), str(body.secret));
  if (body.grant_type !== 'client_credential') fail(40002);
  checkIp(app, ip);
  if (!takeDaily(state, app.appId, 'cgi-bin/stable_token', state.limits.stableTokenDailyLimit, now)) fail(45009);
  const st = state.stable.get(app.appId) ?? {};
  state.stable.set(app.appId, st);
  const L = state.limits;
  const usable = (t: AccountToken | undefined): t is AccountToken =>
    t !== undefined && now < t.expiresAt && (t.invalidAfter === undefined || now < t.invalidAfter);

  if (body.force_refresh === true) {
    const tooSoon = st.lastForceAt !== undefined && now - st.lastForceAt < L.stableForceMinIntervalSec * 1000;
    if (!(tooSoon && usable(st.current))) {
      if (!takeDaily(state, app.appId, 'cgi-bin/stable_token#force', L.stableForceDailyLimit, now)) fail(45009);
      if (st.current) st.current.invalidAfter = now;
      st.current = mint(state, app.appId, 'stable', now);
      st.lastForceAt = now;
    }
  } else if (!usable(st.current) || st.current.expiresAt - now <= L.stableRotateBeforeSec * 1000) {
    // Rotation: the old token is left alone and stays valid to its own expiry (overlap).
    st.current = mint(state, app.appId, 'stable', now);
  }
  const cur = st.current;
  if (!cur) fail(-1);
  return { access_token: cur.token, expires_in: Math.ceil((cur.expiresAt - now) / 1000) };
}

/** Validity of an account token on every cgi-bin API (§8: 41001, 40014, 40001, 42001). */
export function checkAccountToken(state: SandboxState, token: string | undefined, now: number): SandboxApp {
  if (!token) fail(41001);
  const rec = state.accountTokens.get(token);
  if (!rec) fail(tokenShape.test(token) ? 40001 : 40014);
  if (now >= rec.expiresAt) fail(42001);
  if (rec.invalidAfter !== undefined && now >= rec.invalidAfter) fail(40001);
  const app = state.apps.get(rec.appId);
  if (!app) fail(40001);
  return app;
}
