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
    /** Cached official-account access token JSON {token, expiresAt, fetchedAt}. */
    accessToken: (appId: string) => `wx:${oa(appId)}:at`,
    /** Lock name (Kv.tryLock) held by the single fetcher of an account's token. */
    accessTokenLock: (appId: string) => `wx:${oa(appId)}:at-refresh`,
    /** Last token-endpoint WeChatApiError {errcode, errmsg, endpoint}, replayed for a short cooldown. */
    accessTokenFailure: (appId: string) => `wx:${oa(appId)}:at-fail`,
    /** Daily/minute counters the client keeps of its own calls, for quota display. */
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
  },
  // --- oauth: the authorization server ---
  oauth: {
    authCode: (code: string) => `as:code:${digest(code)}`,
    usedAuthCode: (code: string) => `as:code-used:${digest(code)}`,
    revokedJti: (jti: string) => `as:revoked:${jti}`,
  },
  // --- inbox: push de-duplication and reply cache ---
  inbox: {
    dedupe: (appId: string, key: string) => `push:${oa(appId)}:${digest(key)}`,
    replay: (appId: string, signature: string) => `push-replay:${oa(appId)}:${signature}`,
  },
  // --- notices / webhooks: shared rate limits and pauses ---
  notices: {
    rate: (appId: string, api: string, second: number) => `rate:${oa(appId)}:${api}:${second}`,
    pause: (appId: string, api: string) => `pause:${oa(appId)}:${api}`,
  },
  // --- http: rate limits of the HTTP layer ---
  http: {
    rateLimit: (bucket: string, id: string, window: number) => `rl:${bucket}:${digest(id)}:${window}`,
  },
} as const;

/** TTLs in milliseconds. */
export const ttl = {
  flow: 10 * 60_000,
  codeSingleFlight: 5 * 60_000,
  pushDedupe: 5 * 60_000,
  pushReplay: 10 * 60_000,
} as const;
