/**
 * The one owner of each official account's access token (wechat-protocol.md §2.3 中控服务器,
 * SECURITY.md D3). Any number of managers may share one Kv; together they fetch once per expiry:
 * - Kv copy (zod-checked) plus an in-memory copy (≤ 1 min, never past expiry).
 * - Fetch only under the Kv lock, after re-reading the Kv; a per-appId single flight stands in
 *   front of the lock. Lock losers poll the Kv for the holder's result instead of fetching.
 * - Renew once < `refreshBeforeMs` (5 min) remain, ahead of stable_token's 300 s rotation; both
 *   tokens stay valid meanwhile (§2.2), so lock losers keep serving the old one without waiting.
 * - Passive refresh (`refresh(appId, badToken)` after 40001/40014/42001) fetches only while the
 *   Kv still holds the bad token: a storm of 40001s costs one fetch.
 * - stable_token normal mode by default, never force_refresh (20/day, a human's tool); classic
 *   cgi-bin/token on request (each fetch kills the previous token after 5 min, §2.3).
 * - A token-endpoint WeChatApiError (40125, 40164, 45009 …) is shared through the Kv for a short
 *   cooldown, so a fleet does not turn a config error or a quota into a fetch storm.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { DependencyUnavailableError } from '../http/errors.ts';
import { keyspace, quotaDay, ttl as ttls } from '../store/keyspace.ts';
import type { Kv } from '../store/kv.ts';
import { WeChatApiError } from './errors.ts';
import { createWeChatHttp, defaultSleep, isBusy, withBackoff, type FetchLike } from './http.ts';

export interface AccountCredentials {
  appSecret: string;
  /** `stable` (default): cgi-bin/stable_token, normal mode. `classic`: cgi-bin/token. */
  method?: 'stable' | 'classic';
}

export interface AccessTokenManagerOptions {
  kv: Kv;
  fetch?: FetchLike;
  apiBaseUrl: string;
  timeoutMs?: number;
  /** Clock for token lifetimes (ms). Waiting for another holder uses real time. */
  now?: () => number;
  logger: Logger;
  accounts: (appId: string) => AccountCredentials | undefined;
  /** Renew once fewer than this many ms remain (default 5 min). */
  refreshBeforeMs?: number;
  /** Cap of the in-memory copy (default 60 s). */
  memoryTtlMs?: number;
  /** How often a caller that lost the lock re-reads the Kv (default 25 ms). */
  pollMs?: number;
  /** How long it waits for the holder before giving up (default: lock lease + 1 s). */
  waitMs?: number;
  /** How long a token-endpoint error is replayed instead of fetching again (default 5 s; ×12 for 45009). */
  failureCooldownMs?: number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export interface TokenInfo {
  expiresAt: number;
  fetchedAt: number;
}

export interface AccessTokenManager {
  /** A valid token; fetches only when no instance holds one. */
  get(appId: string): Promise<string>;
  /**
   * A token other than `badToken` (default: the cached one), fetching only if the cache still
   * holds it. Call after 40001/40014/42001 with the token that failed.
   */
  refresh(appId: string, badToken?: string): Promise<string>;
  /** Lifetimes of the cached token, without fetching and without the token itself. */
  peek(appId: string): Promise<TokenInfo | null>;
}

const recordSchema = z.object({
  token: z.string().min(1),
  expiresAt: z.number(),
  fetchedAt: z.number(),
  /** Fetched after a report of this very token as bad, and WeChat gave it back unchanged. */
  reconfirmed: z.boolean().optional(),
});
type TokenRecord = z.infer<typeof recordSchema>;

const failureSchema = z.object({ errcode: z.number().int(), errmsg: z.string(), endpoint: z.string() });

const tokenBodySchema = z.object({
  access_token: z.string().min(1),
  expires_in: z.coerce.number().int().positive(),
});

/** Never hand out a token this close to its expiry: it may die in flight. */
const SKEW_MS = 10_000;
/**
 * After a fetch, wait this long before renewing again: a stable token fetched just before
 * WeChat's rotation comes back unchanged, and must not make every caller refetch.
 */
const RENEW_BACKOFF_MS = 30_000;
/**
 * A stable token WeChat just handed back unchanged after a 40001 is what WeChat considers
 * current: later reports of it within this window do not fetch again (no storm).
 */
const RECONFIRM_MS = 10_000;

type Freshness = 'fresh' | 'renew' | 'unusable';

interface Need {
  /** The token a caller saw fail; a record holding it only counts if fetched after `since`. */
  bad?: string | undefined;
  since: number;
}

export function createAccessTokenManager(opts: AccessTokenManagerOptions): AccessTokenManager {
  const { kv } = opts;
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? defaultSleep;
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const refreshBeforeMs = opts.refreshBeforeMs ?? 5 * 60_000;
  const memoryTtlMs = opts.memoryTtlMs ?? 60_000;
  const pollMs = opts.pollMs ?? 25;
  // Two attempts (one -1 retry, ≤ 1 s apart) must fit in the lease.
  const lockTtlMs = 2 * timeoutMs + 2_000;
  const waitMs = opts.waitMs ?? lockTtlMs + 1_000;
  const cooldownMs = opts.failureCooldownMs ?? 5_000;
  const log = opts.logger.child({ component: 'wechat.access-token' });
  const http = createWeChatHttp({ baseUrl: opts.apiBaseUrl, fetch: opts.fetch, timeoutMs, logger: log });

  const memory = new Map<string, { rec: TokenRecord; until: number }>();
  const flights = new Map<string, { bad: string | undefined; promise: Promise<TokenRecord> }>();

  function freshness(rec: TokenRecord | null, need: Need): Freshness {
    const t = now();
    if (!rec || t >= rec.expiresAt - SKEW_MS) return 'unusable';
    if (
      need.bad !== undefined &&
      rec.token === need.bad &&
      rec.fetchedAt <= need.since &&
      !(rec.reconfirmed && t - rec.fetchedAt < RECONFIRM_MS)
    ) {
      return 'unusable';
    }
    if (t >= rec.expiresAt - refreshBeforeMs && t - rec.fetchedAt >= RENEW_BACKOFF_MS) return 'renew';
    return 'fresh';
  }

  async function readRecord(appId: string): Promise<TokenRecord | null> {
    const raw = await kv.get(keyspace.wechat.accessToken(appId));
    if (raw === null) return null;
    try {
      return recordSchema.parse(JSON.parse(raw));
    } catch {
      log.warn({ appId }, 'cached access token is malformed; refetching');
      return null;
    }
  }

  async function readFailure(appId: string): Promise<WeChatApiError | null> {
    const raw = await kv.get(keyspace.wechat.accessTokenFailure(appId));
    if (raw === null) return null;
    let parsed;
    try {
      parsed = failureSchema.safeParse(JSON.parse(raw));
    } catch {
      return null;
    }
    return parsed.success ? new WeChatApiError(parsed.data.errcode, parsed.data.errmsg, parsed.data.endpoint) : null;
  }

  async function fetchToken(appId: string, creds: AccountCredentials, bad: string | undefined): Promise<TokenRecord> {
    const method = creds.method ?? 'stable';
    const fetchedAt = now();
    const body = await withBackoff(
      () =>
        method === 'classic'
          ? http.call({
              method: 'GET',
              path: '/cgi-bin/token',
              query: { grant_type: 'client_credential', appid: appId, secret: creds.appSecret },
              secrets: [creds.appSecret],
              schema: tokenBodySchema,
              idempotent: true,
            })
          : http.call({
              method: 'POST',
              path: '/cgi-bin/stable_token',
              // Normal mode only: force_refresh is for leaked tokens, by a human (§2.2, D3).
              body: { grant_type: 'client_credential', appid: appId, secret: creds.appSecret, force_refresh: false },
              secrets: [creds.appSecret],
              schema: tokenBodySchema,
              idempotent: true,
            }),
      isBusy,
      { attempts: 2, baseMs: 200, capMs: 1_000, sleep, random: opts.random },
    );
    const rec: TokenRecord = {
      token: body.access_token,
      expiresAt: fetchedAt + body.expires_in * 1000,
      fetchedAt,
      ...(bad !== undefined && body.access_token === bad ? { reconfirmed: true } : {}),
    };
    const ttl = rec.expiresAt - now();
    if (ttl > 0) await kv.set(keyspace.wechat.accessToken(appId), JSON.stringify(rec), ttl);
    // Counted for the admin dashboard (fetches per quota day); a miss only loses a count.
    await kv.incr(keyspace.wechat.callCounter(appId, 'token', quotaDay(fetchedAt)), ttls.callCounter).catch(() => undefined);
    log.info({ appId, method, expiresIn: body.expires_in }, 'access token fetched');
    return rec;
  }

  async function rememberFailure(appId: string, err: unknown): Promise<void> {
    if (!(err instanceof WeChatApiError)) return;
    const ttl = err.kind === 'quota_daily' ? cooldownMs * 12 : cooldownMs;
    const value = JSON.stringify({ errcode: err.errcode, errmsg: err.errmsg, endpoint: err.endpoint });
    await kv.set(keyspace.wechat.accessTokenFailure(appId), value, ttl).catch(() => undefined);
    log.error({ appId, errcode: err.errcode, kind: err.kind }, 'access token fetch failed');
  }

  /** Kv-level single owner: fetch under the lock, or wait for whoever holds it. */
  async function obtain(appId: string, creds: AccountCredentials, need: Need): Promise<TokenRecord> {
    let rec = await readRecord(appId);
    let f = freshness(rec, need);
    if (f === 'fresh') return rec as TokenRecord;
    const deadline = performance.now() + waitMs;
    for (;;) {
      const failure = await readFailure(appId);
      if (failure) {
        if (f === 'renew') return rec as TokenRecord;
        throw failure;
      }
      const lock = await kv.tryLock(keyspace.wechat.accessTokenLock(appId), lockTtlMs);
      if (lock) {
        try {
          // Someone may have finished between our read and our lock.
          rec = await readRecord(appId);
          f = freshness(rec, need);
          if (f === 'fresh') return rec as TokenRecord;
          try {
            return await fetchToken(appId, creds, need.bad);
          } catch (err) {
            await rememberFailure(appId, err);
            if (f === 'renew') {
              log.warn({ appId }, 'early refresh failed; serving the current token');
              return rec as TokenRecord;
            }
            throw err;
          }
        } finally {
          await lock.release().catch(() => log.warn({ appId }, 'could not release the token lock'));
        }
      }
      // Another instance is fetching. A still-valid token is good enough meanwhile.
      if (f === 'renew') return rec as TokenRecord;
      if (performance.now() >= deadline) throw new DependencyUnavailableError('wechat');
      await sleep(pollMs);
      rec = await readRecord(appId);
      f = freshness(rec, need);
      if (f !== 'unusable') return rec as TokenRecord;
    }
  }

  /** Process-level single flight in front of `obtain`. */
  async function shared(appId: string, need: Need): Promise<TokenRecord> {
    const creds = opts.accounts(appId);
    if (!creds) throw new Error(`wechat: no credentials configured for official account ${appId}`);
    for (;;) {
      const cur = flights.get(appId);
      if (!cur) break;
      const rec = await cur.promise;
      // A flight for the same bad token answers us whatever it returned.
      if (cur.bad === need.bad || freshness(rec, need) !== 'unusable') return rec;
    }
    const promise = obtain(appId, creds, need).finally(() => {
      if (flights.get(appId)?.promise === promise) flights.delete(appId);
    });
    flights.set(appId, { bad: need.bad, promise });
    return promise;
  }

  function remember(appId: string, rec: TokenRecord): void {
    const t = now();
    const renewAt = rec.expiresAt - refreshBeforeMs;
    // Inside the renew window, look again soon so that someone renews; otherwise ≤ 1 min.
    const until = Math.min(t + memoryTtlMs, rec.expiresAt - SKEW_MS, renewAt > t ? renewAt : t + 5_000);
    if (until > t) memory.set(appId, { rec, until });
    else memory.delete(appId);
  }

  return {
    async get(appId) {
      const m = memory.get(appId);
      if (m && now() < m.until) return m.rec.token;
      const rec = await shared(appId, { since: now() });
      remember(appId, rec);
      return rec.token;
    },
    async refresh(appId, badToken) {
      const since = now();
      const bad = badToken ?? (await readRecord(appId))?.token ?? memory.get(appId)?.rec.token;
      if (bad !== undefined && memory.get(appId)?.rec.token === bad) memory.delete(appId);
      const rec = await shared(appId, { bad, since });
      remember(appId, rec);
      return rec.token;
    },
    async peek(appId) {
      const rec = await readRecord(appId);
      return rec ? { expiresAt: rec.expiresAt, fetchedAt: rec.fetchedAt } : null;
    },
  };
}

