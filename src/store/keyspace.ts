/**
 * Every Kv key pattern and TTL of wxbridge, in one place. Keys that belong to one
 * official account carry the hash tag `{oa:<appId>}` so that Redis Cluster keeps an
 * account's keys on one slot (multi-key Lua scripts stay legal). Values read back are
 * validated with zod by the feature that owns them.
 *
 * Sections are owned by features; add keys to your own section only.
 */
import { createHash } from 'node:crypto';

/** Never put a raw code, state or token in a key name: keys show up in MONITOR and slowlogs. */
export const digest = (value: string): string => createHash('sha256').update(value).digest('base64url');

const oa = (appId: string): string => `{oa:${appId}}`;

export const keyspace = {
  // --- wechat: access tokens (one owner per account, §2.3 of wechat-protocol.md) ---
  wechat: {
    /** Cached official-account access token JSON {token, expiresAt, fetchedAt, reconfirmed?}; TTL = its life. */
    accessToken: (appId: string) => `wx:${oa(appId)}:at`,
    /** Lock name (Kv.tryLock) held by the single fetcher of an account's token. */
    accessTokenLock: (appId: string) => `wx:${oa(appId)}:at-refresh`,
    /** Last token-endpoint WeChatApiError {errcode, errmsg, endpoint}, replayed for a short cooldown. */
    accessTokenFailure: (appId: string) => `wx:${oa(appId)}:at-fail`,
    /**
     * Daily/minute counters the client keeps of its own calls, for quota display. In use:
     * api `token` (access-token fetches), `template` and `custom` (notice sends), bucket a
     * `quotaDay`; INCR with TTL `ttl.callCounter`.
     */
    callCounter: (appId: string, api: string, bucket: string) => `wx:${oa(appId)}:calls:${api}:${bucket}`,
  },
  // --- linking: login flows (state), code single-flight ---
  linking: {
    flow: (flowId: string) => `flow:${flowId}`,
    /** OAuth state sent to WeChat → flow id; consumed with GETDEL. */
    state: (appId: string, state: string) => `st:${oa(appId)}:${digest(state)}`,
    /** Single-flight of a WeChat code: in-flight marker, then the outcome (D5). */
    code: (appId: string, code: string) => `code:${oa(appId)}:${digest(code)}`,
    attempts: (scope: string, id: string) => `attempts:${scope}:${id}`,
    /** End-user session after WeChat login (EndUserSession JSON); the cookie holds the id. */
    session: (sessionId: string) => `sess:${digest(sessionId)}`,
    /** A proof in progress (verify-api steps, an OIDC round trip); single-use where it matters. */
    proof: (proofId: string) => `proof:${digest(proofId)}`,
    /** OIDC `state` sent to a merchant's identity provider → proof id; consumed with GETDEL. */
    oidcState: (merchantId: string, state: string) => `oidc-st:${merchantId}:${digest(state)}`,
  },
  // --- oauth: the authorization server ---
  oauth: {
    authCode: (code: string) => `as:code:${digest(code)}`,
    usedAuthCode: (code: string) => `as:code-used:${digest(code)}`,
    /** A pending authorization request (validated /oauth2/authorize parameters) while the user logs in, links or chooses. */
    authzRequest: (id: string) => `as:authz:${digest(id)}`,
    /** private_key_jwt assertion ids, single-use until the assertion expires (RFC 7523 §3). */
    assertionJti: (clientId: string, jti: string) => `as:assertion:${digest(`${clientId}\u0000${jti}`)}`,
    /** The demo merchant H5 app's login flow (PKCE verifier, state, nonce) between /demo/app/login and its callback. */
    demoAppFlow: (id: string) => `demo-app:${digest(id)}`,
  },
  // --- inbox: push de-duplication and reply cache ---
  inbox: {
    /** Claim of one push (pending → done with the reply sent), JSON guarded by inbox/claims.ts. */
    dedupe: (appId: string, key: string) => `push:${oa(appId)}:${digest(key)}`,
    /** Only one retry may take over a claim whose owner died (value '1'). */
    takeover: (appId: string, key: string, startedAt: number) => `push-takeover:${oa(appId)}:${digest(key)}:${startedAt}`,
    /** Plaintext pushes: signature → sha256 of the body it came with (a signature cannot carry another body). */
    replay: (appId: string, signature: string) => `push-replay:${oa(appId)}:${signature}`,
    /** Customer-service window grant of one kind ('message' | 'event'), JSON {g, e, q}. */
    csGrant: (appId: string, openid: string, kind: string) => `csw:${oa(appId)}:${digest(openid)}:${kind}`,
    /** Messages sent against one grant (counter; a new grant has a new key, so its count starts at 0). */
    csUsed: (appId: string, openid: string, kind: string, grantedAt: number) => `csw-used:${oa(appId)}:${digest(openid)}:${kind}:${grantedAt}`,
    /** Lock name (Kv.tryLock): one follower sync per account across instances. */
    followerSyncLock: (appId: string) => `inbox:${oa(appId)}:follower-sync`,
  },
  // --- notices / webhooks: shared rate limits and pauses ---
  notices: {
    /** Sends reserved in one second by every worker of an account (shared limiter); INCRBY. */
    rate: (appId: string, api: string, second: number) => `rate:${oa(appId)}:${api}:${second}`,
    /** JSON {until, errcode}: no sends to that API until `until` (45009 / 45011). */
    pause: (appId: string, api: string) => `pause:${oa(appId)}:${api}`,
    /** Notices sent to one user of one merchant on one local day (perUserDailyCap); INCRBY. */
    userDaily: (merchantId: string, identityId: string, day: string) => `ncap:${merchantId}:${identityId}:${day}`,
  },
  // --- admin: the admin UI's sign-in state (sessions themselves live in Postgres) ---
  admin: {
    /** Failed sign-in steps for one email, known or not (no account enumeration through lockout); INCR. */
    failures: (email: string) => `admin:fail:${digest(email.trim().toLowerCase())}`,
    /** The state between a correct password and a correct TOTP code; the cookie holds the id. */
    preAuth: (id: string) => `admin:pre:${digest(id)}`,
    /** An SSO round trip in progress (state, nonce, PKCE verifier); the cookie holds the id. */
    ssoFlow: (id: string) => `admin:sso:${digest(id)}`,
  },
  // --- http: rate limits of the HTTP layer ---
  http: {
    rateLimit: (bucket: string, id: string, window: number) => `rl:${bucket}:${digest(id)}:${window}`,
  },
} as const;

/**
 * The day a WeChat daily quota counts in: quotas reset at midnight Beijing time (UTC+8,
 * no daylight saving), so counters of calls against them are bucketed by that day.
 */
export const quotaDay = (ms: number): string => new Date(ms + 8 * 3600_000).toISOString().slice(0, 10);

/** TTLs in milliseconds. */
export const ttl = {
  flow: 10 * 60_000,
  codeSingleFlight: 5 * 60_000,
  /** End-user session: absolute lifetime (ASVS 7.3.2); re-login through WeChat is silent. */
  session: 2 * 3600_000,
  /** A proof (verify-api steps, OIDC round trip) must finish within this. */
  proof: 10 * 60_000,
  /** Window of the failed-proof counters (per user, per account). */
  proofFailures: 60 * 60_000,
  // ≥ 2× the 300 s freshness window: a verbatim replay accepted near the edge of the window
  // (clock skew either way) must still find its claim (SECURITY.md A9).
  pushDedupe: 10 * 60_000,
  pushReplay: 10 * 60_000,
  /** oauth: authorization codes live at most 60 s (issue 5; RFC 6749 §4.1.2 allows 10 min). */
  authCode: 60_000,
  /** oauth: an authorization request waits this long for login, linking and the chooser. */
  authzRequest: 15 * 60_000,
  /** Daily call counters (`wechat.callCounter`): kept a little longer than the dashboard's two weeks. */
  callCounter: 16 * 86_400_000,
} as const;
