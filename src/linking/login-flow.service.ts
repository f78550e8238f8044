/**
 * WeChat web authorization for end users (wechat-protocol.md §1; SECURITY.md A1, A10, D1, D5).
 *
 * - Start: a flow record (merchant, official account, `next`, the digest of the browser's
 *   flow cookie) is stored under the `state` sent to WeChat, 10 minutes, single use.
 *   `snsapi_base` first; a second, `snsapi_userinfo` round only for a merchant that asks for
 *   profile data and only while we hold none.
 * - Callback: the code is claimed first (SET NX), so WeChat's double redirect and any replay
 *   wait for and get the first request's outcome; only the claimer consumes the state
 *   (GETDEL) and exchanges the code, once. A duplicate must bring the same state and the same
 *   browser cookie to see that outcome. A declined callback (no code) is claimed by its state
 *   the same way, so its duplicates see the same page too.
 * - WeChat has no PKCE, nonce or `iss` (accepted deviation, RFC 9700 §4.5): state bound to the
 *   browser is the CSRF defence, the official account id in the callback URL plus the appid
 *   in the state key are the mix-up defence (§4.4), and the caller redirects straight to a
 *   clean URL after the exchange (§4.2.4, §4.3.1).
 * - Fail closed (D1): a Kv or Db outage yields `retry`, never a session; nothing half-written.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AppConfig, MerchantConfig, OfficialAccountConfig } from '../config/index.ts';
import { DependencyUnavailableError } from '../http/errors.ts';
import { randomAlnum } from '../security/secrets.ts';
import { digest, keyspace, ttl } from '../store/keyspace.ts';
import type { Kv } from '../store/kv.ts';
import { WeChatApiError, WeChatTransportError, type WebAuthClient, type WebAuthScope } from '../wechat/index.ts';
import type { BindingsService } from './bindings.service.ts';
import type { SessionsService } from './sessions.service.ts';
import { parseStored } from '../store/rows.ts';
import { websiteSession } from './website-login.ts';

/** Who exchanges the code: the official account, or its Open Platform website app. */
type Client = { appId: string; appSecret: string };

export type FlowErrorReason = 'declined' | 'expired' | 'cross_browser' | 'code_spent' | 'snapshot' | 'busy' | 'retry' | 'website_unlinked';

export type CallbackOutcome =
  | { kind: 'ok'; sessionId: string; next: string }
  /** Another authorization round (snsapi_userinfo): send the browser here. */
  | { kind: 'continue'; location: string }
  | { kind: 'error'; reason: FlowErrorReason; retry?: { merchantId: string; next: string } };

const flowSchema = z.object({
  merchantId: z.string(),
  appId: z.string(),
  next: z.string(),
  /** `snsapi_login`: the website app's QR login (then `appId` is the website app's). */
  scope: z.enum(['snsapi_base', 'snsapi_userinfo', 'snsapi_login']),
  browser: z.string(),
  /** Set on the userinfo round: the identity the base round found (declining keeps it). */
  identityId: z.string().optional(),
});
type Flow = z.infer<typeof flowSchema>;

const outcomeSchema: z.ZodType<CallbackOutcome> = z.union([
  z.object({ kind: z.literal('ok'), sessionId: z.string(), next: z.string() }),
  z.object({ kind: z.literal('continue'), location: z.string() }),
  z.object({
    kind: z.literal('error'),
    reason: z.enum(['declined', 'expired', 'cross_browser', 'code_spent', 'snapshot', 'busy', 'retry', 'website_unlinked']),
    retry: z.object({ merchantId: z.string(), next: z.string() }).optional(),
  }),
]);

const codeRecordSchema = z.union([
  z.object({ s: z.literal('pending') }),
  z.object({ s: z.literal('done'), state: z.string(), browser: z.string(), outcome: outcomeSchema }),
]);

const STATE_RE = /^[A-Za-z0-9]{1,128}$/;
const CODE_RE = /^[A-Za-z0-9_-]{1,256}$/;

export interface LoginFlowDeps {
  config: Pick<AppConfig, 'publicUrl' | 'officialAccounts' | 'wechat'>;
  merchant: (id: string) => MerchantConfig | undefined;
  kv: Kv;
  webAuth: WebAuthClient;
  bindings: BindingsService;
  sessions: SessionsService;
  log: Logger;
  now: () => number;
  /** How long a duplicate callback waits for the first one's outcome. */
  duplicateWaitMs?: number;
}

export interface LoginFlowService {
  /** The WeChat authorize URL for a new flow of this merchant; the browser id comes from its cookie. */
  /** `website`: QR login with the account's Open Platform website app instead (desktop browsers). */
  start(p: { merchantId: string; next: string; browserId: string; scope?: WebAuthScope; website?: boolean; lang?: 'cn' | 'en' }): Promise<string>;
  /** `app: 'web'` marks a callback of the website app. */
  callback(p: { oa: string | undefined; app?: string; code: string | undefined; state: string | undefined; browserId: string | undefined }): Promise<CallbackOutcome>;
  /** The official account a merchant's users log in through. */
  accountOf(merchantId: string): OfficialAccountConfig | undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function createLoginFlowService(deps: LoginFlowDeps): LoginFlowService {
  const waitMs = deps.duplicateWaitMs ?? 8_000;
  const inflight = new Map<string, Promise<{ state: string; browser: string; outcome: CallbackOutcome } | CallbackOutcome>>();
  const accountOf = (merchantId: string) => {
    const m = deps.merchant(merchantId);
    return m && deps.config.officialAccounts.find((a) => a.id === m.officialAccount);
  };
  const error = (reason: FlowErrorReason, flow?: Flow): CallbackOutcome => ({
    kind: 'error',
    reason,
    ...(flow ? { retry: { merchantId: flow.merchantId, next: flow.next } } : {}),
  });

  async function open(flow: Flow, lang: 'cn' | 'en' = 'cn'): Promise<string> {
    const account = accountOf(flow.merchantId);
    if (!account) throw new TypeError('unknown merchant');
    // 43 characters of [A-Za-z0-9] ≈ 256 bits, inside WeChat's 128-byte state limit (§1.2).
    const state = randomAlnum(43);
    // Keyed by the appid that will return the code: each appid is its own issuer (RFC 9700 §4.4).
    await deps.kv.set(keyspace.linking.state(flow.appId, state), JSON.stringify(flow), ttl.flow);
    // One callback path (DESIGN.md); the account id in it tells which appid issued the code.
    const redirectUri = `${deps.config.publicUrl}/wechat/oauth/callback?oa=${encodeURIComponent(account.id)}`;
    if (flow.scope === 'snsapi_login') return deps.webAuth.qrConnectUrl({ appId: flow.appId, redirectUri: `${redirectUri}&app=web`, state, lang });
    return deps.webAuth.authorizeUrl({ appId: account.appId, redirectUri, scope: flow.scope, state });
  }

  async function start(p: { merchantId: string; next: string; browserId: string; scope?: WebAuthScope; website?: boolean; lang?: 'cn' | 'en' }): Promise<string> {
    const account = accountOf(p.merchantId);
    if (!account) throw new TypeError('unknown merchant');
    const browser = digest(p.browserId);
    if (p.website) {
      if (!account.websiteApp) throw new TypeError('no website app for this account');
      return open({ merchantId: p.merchantId, appId: account.websiteApp.appId, next: p.next, scope: 'snsapi_login', browser }, p.lang);
    }
    return open({ merchantId: p.merchantId, appId: account.appId, next: p.next, scope: p.scope ?? 'snsapi_base', browser });
  }

  async function consumeFlow(appId: string, state: string): Promise<Flow | null> {
    return parseStored(flowSchema, await deps.kv.getDel(keyspace.linking.state(appId, state)));
  }

  async function exchangeAndLogin(account: OfficialAccountConfig, client: Client, code: string, flow: Flow): Promise<CallbackOutcome> {
    let tokens;
    try {
      tokens = await deps.webAuth.exchangeCode({ appId: client.appId, appSecret: client.appSecret, code });
    } catch (err) {
      if (err instanceof WeChatApiError && err.kind === 'code_spent') return error('code_spent', flow);
      if (err instanceof WeChatApiError && err.kind === 'busy') return error('busy', flow);
      // A timeout is ambiguous (the code may be spent): the user starts again (SECURITY.md D1).
      if (err instanceof WeChatTransportError) return error('busy', flow);
      deps.log.error({ err, appId: account.appId }, 'code exchange failed');
      return error('retry', flow);
    }
    // A snapshot-page identity is virtual (§1.8): never create, match or link it.
    if (tokens.isSnapshotUser) return error('snapshot', flow);
    if (flow.scope === 'snsapi_login' && account.websiteApp) {
      const sessionId = await websiteSession(deps, { ...account, websiteApp: account.websiteApp }, tokens);
      return sessionId ? { kind: 'ok', sessionId, next: flow.next } : error('website_unlinked', flow);
    }
    const m = deps.merchant(flow.merchantId);
    const wantsProfile = m?.profile === 'userinfo';
    let profile: { nickname: string; avatarUrl: string } | null = null;
    if (wantsProfile && tokens.scopes.includes('snsapi_userinfo')) {
      try {
        const info = await deps.webAuth.userInfo({ accessToken: tokens.accessToken, openid: tokens.openid });
        profile = { nickname: info.nickname, avatarUrl: info.headImgUrl };
      } catch (err) {
        // The login stands without a profile; the next login asks again.
        deps.log.warn({ err, appId: account.appId }, 'userinfo failed');
      }
    }
    const identity = await deps.bindings.upsertFromLogin({ appId: account.appId, openid: tokens.openid, unionid: tokens.unionid, profile });
    if (wantsProfile && identity.nickname === null && flow.scope === 'snsapi_base') {
      const location = await open({ ...flow, scope: 'snsapi_userinfo', identityId: identity.id });
      return { kind: 'continue', location };
    }
    const sessionId = await deps.sessions.create({ identityId: identity.id, appId: account.appId, authTime: Math.floor(deps.now() / 1000), scopes: tokens.scopes });
    return { kind: 'ok', sessionId, next: flow.next };
  }

  async function first(account: OfficialAccountConfig, client: Client, code: string, state: string, browser: string): Promise<CallbackOutcome> {
    const flow = await consumeFlow(client.appId, state);
    if (!flow) return error('expired');
    if (flow.browser !== browser) return error('cross_browser', flow);
    return exchangeAndLogin(account, client, code, flow);
  }

  /** No code: the user refused consent (§1.4, §13.3). The state is still single-use. */
  async function declined(account: OfficialAccountConfig, client: Client, state: string, browser: string): Promise<CallbackOutcome> {
    const flow = await consumeFlow(client.appId, state);
    if (!flow) return error('expired');
    if (flow.browser !== browser) return error('cross_browser', flow);
    if (flow.identityId && flow.scope === 'snsapi_userinfo') {
      // Declining the profile keeps the base login: ask only when necessary, never force (§1.8).
      const sessionId = await deps.sessions.create({ identityId: flow.identityId, appId: account.appId, authTime: Math.floor(deps.now() / 1000), scopes: ['snsapi_base'] });
      return { kind: 'ok', sessionId, next: flow.next };
    }
    return error('declined', flow);
  }

  /** A store or WeChat outage turns into the retry page, never a session (SECURITY.md D1); say which. */
  function failedClosed(err: unknown): void {
    if (err instanceof DependencyUnavailableError) deps.log.warn({ dependency: err.dependency, cause: (err.cause as Error | undefined)?.message }, 'login callback failed closed');
    else deps.log.error({ err }, 'login callback failed');
  }

  type FirstRecord = { state: string; browser: string; outcome: CallbackOutcome };

  /** The first request's record, from another instance through the Kv; an error outcome when gone or too slow. */
  async function awaitFirst(key: string): Promise<FirstRecord | CallbackOutcome> {
    const deadline = Date.now() + waitMs;
    for (let delay = 10; Date.now() < deadline; delay = Math.min(delay * 2, 100)) {
      const rec = parseStored(codeRecordSchema, await deps.kv.get(key));
      if (!rec) return error('expired');
      if (rec.s === 'done') return rec;
      await sleep(delay);
    }
    return error('retry');
  }

  /** The outcome belongs to the browser that started the flow, with its state only. */
  const sameFlow = (first: FirstRecord | CallbackOutcome, state: string, browser: string): CallbackOutcome => {
    if ('kind' in first) return first;
    if (first.state !== digest(state)) return error('expired');
    if (first.browser !== browser) return error('cross_browser');
    return first.outcome;
  };

  /** Claims the code (SET NX) or waits for whoever holds it; the claimer consumes the state (and exchanges the code). */
  async function settle(key: string, run: () => Promise<CallbackOutcome>, state: string, browser: string): Promise<FirstRecord | CallbackOutcome> {
    if (!(await deps.kv.setIfAbsent(key, JSON.stringify({ s: 'pending' }), ttl.codeSingleFlight))) return awaitFirst(key);
    let outcome: CallbackOutcome;
    try {
      outcome = await run();
    } catch (err) {
      failedClosed(err);
      outcome = error('retry');
    }
    const record: FirstRecord = { state: digest(state), browser, outcome };
    await deps.kv
      .set(key, JSON.stringify({ s: 'done', ...record }), ttl.codeSingleFlight)
      .catch((err: unknown) => deps.log.warn({ err }, 'could not record the callback outcome'));
    return record;
  }

  /**
   * Runs `run` once per key across copies of one callback: duplicates on this instance share the
   * first one's promise (set before any await); only those landing on another instance poll the
   * Kv. Either way they get the first outcome, if they bring its state and browser.
   */
  async function singleFlight(key: string, run: () => Promise<CallbackOutcome>, state: string, browser: string): Promise<CallbackOutcome> {
    let shared = inflight.get(key);
    if (!shared) {
      shared = settle(key, run, state, browser);
      inflight.set(key, shared);
      // Later replays read the Kv record; the map only bridges the in-flight moment.
      void shared.finally(() => inflight.delete(key)).catch(() => undefined);
    }
    return sameFlow(await shared, state, browser);
  }

  async function callback(p: { oa: string | undefined; app?: string; code: string | undefined; state: string | undefined; browserId: string | undefined }): Promise<CallbackOutcome> {
    const account = deps.config.officialAccounts.find((a) => a.id === p.oa);
    const client = p.app === 'web' ? account?.websiteApp : account;
    if (!account || !client || !p.state || !STATE_RE.test(p.state)) return error('expired');
    const browser = digest(p.browserId ?? '');
    try {
      const { code, state } = p;
      if (!code) {
        // WeChat's double redirect hits a declined callback too (A10, T7): without a code the
        // state names the callback, so it is the single-flight key. A ':' never appears in a
        // code (CODE_RE), so this key cannot meet a real code's.
        const key = keyspace.linking.code(client.appId, `declined:${state}`);
        return await singleFlight(key, () => declined(account, client, state, browser), state, browser);
      }
      if (!CODE_RE.test(code)) return error('code_spent');
      const key = keyspace.linking.code(client.appId, code);
      return await singleFlight(key, () => first(account, client, code, state, browser), state, browser);
    } catch (err) {
      if (!(err instanceof DependencyUnavailableError)) throw err;
      failedClosed(err);
      return error('retry');
    }
  }

  return { start, callback, accountOf };
}
