/**
 * What every worker of every machine agrees on before it sends, kept in the Kv so it is
 * shared (DESIGN.md "Scale-out"; wechat-protocol.md §8, §9; SECURITY.md D1, D4):
 *
 * - a per-account limiter: sends are reserved per second with one INCRBY per batch;
 * - pauses per account and API: 45009 stops that API until the quota day ends, 45011 until
 *   the next minute. A pause is also kept in memory, so this process stops at once;
 * - the per-user daily cap of a merchant.
 *
 * When the Kv is down these calls throw, and the dispatcher sends nothing (D1: no send
 * without the shared limiter), so an outage delays notices but never over-sends.
 */
import { z } from 'zod';
import { keyspace, quotaDay, ttl } from '../store/keyspace.ts';
import type { Kv } from '../store/kv.ts';
import { nextQuotaDay } from './schedule.ts';

export type SendApi = 'template' | 'custom';

export interface Governor {
  /** Reserves up to `n` sends of this second for an account; returns how many were granted. */
  reserve(appId: string, n: number): Promise<number>;
  /** The instant an API's pause ends (0: not paused), from the shared store. */
  pausedUntil(appId: string, api: SendApi): Promise<number>;
  /** Same, from this process's memory only: checked right before each send. */
  pausedLocally(appId: string, api: SendApi): number;
  pause(appId: string, api: SendApi, until: number, errcode: number): Promise<void>;
  /** Counts one notice for a user's day; false (and nothing counted) when the cap is reached. */
  takeDaily(merchantId: string, identityId: string, day: string, cap: number): Promise<boolean>;
  /** Gives back a count taken for a notice that was not sent after all. */
  refundDaily(merchantId: string, identityId: string, day: string): Promise<void>;
  /**
   * Counts one call made to a send API against the account's daily quota (the admin
   * dashboard's "quota use"). Never waits and never throws: a lost count is only a display.
   */
  countCall(appId: string, api: SendApi): void;
}

const pauseSchema = z.object({ until: z.number(), errcode: z.number().int() });
const DAY_TTL_MS = 26 * 3600_000;
const COUNT_FLUSH_MS = 1_000;

export function createGovernor(deps: { kv: Kv; now: () => number; ratePerSecond: number }): Governor {
  const { kv, now } = deps;
  const local = new Map<string, number>();
  const counts = new Map<string, number>();
  let flushTimer: NodeJS.Timeout | undefined;
  function flushCounts(): void {
    flushTimer = undefined;
    const batch = [...counts];
    counts.clear();
    for (const [key, n] of batch) kv.incr(key, ttl.callCounter, n).catch(() => undefined);
  }
  const localKey = (appId: string, api: SendApi) => `${appId}|${api}`;
  // The quota day of the call counters, worked out once a day rather than once per send.
  let day = '';
  let dayStarts = 0;
  let dayEnds = 0;

  function pausedLocally(appId: string, api: SendApi): number {
    const until = local.get(localKey(appId, api)) ?? 0;
    return until > now() ? until : 0;
  }

  return {
    async reserve(appId, n) {
      if (n <= 0) return 0;
      const second = Math.floor(now() / 1000);
      const total = await kv.incr(keyspace.notices.rate(appId, 'send', second), 2_000, n);
      return Math.max(0, Math.min(n, deps.ratePerSecond - (total - n)));
    },
    async pausedUntil(appId, api) {
      const raw = await kv.get(keyspace.notices.pause(appId, api));
      const parsed = raw === null ? undefined : pauseSchema.safeParse(safeJson(raw));
      const shared = parsed?.success ? parsed.data.until : 0;
      const until = Math.max(shared, pausedLocally(appId, api));
      if (until > now()) local.set(localKey(appId, api), until);
      return until > now() ? until : 0;
    },
    pausedLocally,
    async pause(appId, api, until, errcode) {
      if (until <= pausedLocally(appId, api)) return;
      local.set(localKey(appId, api), until);
      const ttl = Math.max(1_000, until - now() + 60_000);
      await kv.set(keyspace.notices.pause(appId, api), JSON.stringify({ until, errcode }), ttl);
    },
    async takeDaily(merchantId, identityId, day, cap) {
      const key = keyspace.notices.userDaily(merchantId, identityId, day);
      const count = await kv.incr(key, DAY_TTL_MS);
      if (count <= cap) return true;
      await kv.incr(key, DAY_TTL_MS, -1);
      return false;
    },
    async refundDaily(merchantId, identityId, day) {
      await kv.incr(keyspace.notices.userDaily(merchantId, identityId, day), DAY_TTL_MS, -1);
    },
    countCall(appId, api) {
      // Gathered for a second and written as one INCRBY per key: thousands of sends a second
      // cost a few Kv calls, not one each. A crash loses at most a second of counts.
      const t = now();
      if (t >= dayEnds || t < dayStarts) {
        day = quotaDay(t);
        dayEnds = nextQuotaDay(t);
        dayStarts = dayEnds - 86_400_000;
      }
      const key = keyspace.wechat.callCounter(appId, api, day);
      counts.set(key, (counts.get(key) ?? 0) + 1);
      flushTimer ??= setTimeout(flushCounts, COUNT_FLUSH_MS).unref();
    },
  };
}

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}
