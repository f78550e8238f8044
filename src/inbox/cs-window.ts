/**
 * The customer-service window of each user (wechat-protocol.md §3.2): a user message grants
 * `messageQuota` sends for `messageWindowHours`; a menu click, follow or QR scan grants
 * `eventQuota` sends for `eventWindowSeconds` (a VIEW menu grants nothing). A new
 * interaction of a kind replaces the previous grant of that kind, and a send spends the open
 * grant that runs out first — both as the sandbox models WeChat.
 *
 * Shared through the Kv so every instance sees the same window:
 * - one key per (account, user, kind) holds the grant `{g: grantedAt, e: expiresAt, q: quota}`
 *   and expires with it, so `record` is a single SET;
 * - one counter per grant counts the sends. `tryConsume` increments it and takes the slot only
 *   if the new value is within the quota; otherwise it gives the increment back. The counter
 *   never lets two instances spend the same slot (INCR is atomic); the cost of the race is
 *   conservative — two callers at the limit may both give up.
 */
import { z } from 'zod';
import { parseStored } from '../store/rows.ts';
import { keyspace } from '../store/keyspace.ts';
import type { Kv } from '../store/kv.ts';

export type InteractionKind = 'message' | 'event';

export interface CsQuotas {
  messageQuota: number;
  messageWindowHours: number;
  eventQuota: number;
  eventWindowSeconds: number;
}

export interface CsWindowStatus {
  open: boolean;
  /** Sends left across the open grants. */
  remaining: number;
  /** When the last open grant closes (ms), null when none is open. */
  expiresAt: number | null;
}

export interface CsWindow {
  record(appId: string, openid: string, kind: InteractionKind, at?: number): Promise<void>;
  status(appId: string, openid: string): Promise<CsWindowStatus>;
  /** Atomic across instances: takes one slot if the window is open and quota remains. */
  tryConsume(appId: string, openid: string): Promise<boolean>;
  /** Closes the window (the user unfollowed: WeChat answers 45015 from now on). */
  clear(appId: string, openid: string): Promise<void>;
}

export interface CsWindowOptions {
  kv: Kv;
  now?: () => number;
  quotas: (appId: string) => CsQuotas;
}

const grantSchema = z.object({ g: z.number().int(), e: z.number().int(), q: z.number().int().min(0) });
type Grant = z.infer<typeof grantSchema> & { kind: InteractionKind };

const KINDS: readonly InteractionKind[] = ['message', 'event'];

export function createCsWindow(opts: CsWindowOptions): CsWindow {
  const { kv } = opts;
  const now = opts.now ?? Date.now;

  async function openGrants(appId: string, openid: string, t: number): Promise<Grant[]> {
    const raw = await Promise.all(KINDS.map((k) => kv.get(keyspace.inbox.csGrant(appId, openid, k))));
    const grants: Grant[] = [];
    raw.forEach((v, i) => {
      // A corrupt value is no grant: the safe reading is "window closed".
      const g = parseStored(grantSchema, v);
      if (g && g.e > t) grants.push({ ...g, kind: KINDS[i] as InteractionKind });
    });
    return grants.sort((a, b) => a.e - b.e);
  }

  const usedKey = (appId: string, openid: string, g: Grant) => keyspace.inbox.csUsed(appId, openid, g.kind, g.g);

  return {
    async record(appId, openid, kind, at) {
      const t = at ?? now();
      const q = opts.quotas(appId);
      const windowMs = kind === 'message' ? q.messageWindowHours * 3_600_000 : q.eventWindowSeconds * 1000;
      const grant = { g: t, e: t + windowMs, q: kind === 'message' ? q.messageQuota : q.eventQuota };
      const ttl = grant.e - now();
      if (ttl <= 0) return;
      await kv.set(keyspace.inbox.csGrant(appId, openid, kind), JSON.stringify(grant), ttl);
    },

    async status(appId, openid) {
      const t = now();
      const grants = await openGrants(appId, openid, t);
      if (grants.length === 0) return { open: false, remaining: 0, expiresAt: null };
      const used = await Promise.all(grants.map((g) => kv.get(usedKey(appId, openid, g))));
      const remaining = grants.reduce((sum, g, i) => sum + Math.max(0, g.q - Number(used[i] ?? 0)), 0);
      return { open: true, remaining, expiresAt: Math.max(...grants.map((g) => g.e)) };
    },

    async tryConsume(appId, openid) {
      const t = now();
      for (const g of await openGrants(appId, openid, t)) {
        const key = usedKey(appId, openid, g);
        const n = await kv.incr(key, g.e - t);
        if (n <= g.q) return true;
        await kv.incr(key, g.e - t, -1);
      }
      return false;
    },

    async clear(appId, openid) {
      await kv.del(...KINDS.map((k) => keyspace.inbox.csGrant(appId, openid, k)));
    },
  };
}

/** The quotas of an official account from its config (`csWindow`, §13.1: configurable). */
export function quotasFromConfig(accounts: readonly { appId: string; csWindow: CsQuotas }[]): (appId: string) => CsQuotas {
  const byApp = new Map(accounts.map((a) => [a.appId, a.csWindow]));
  return (appId) => byApp.get(appId) ?? { messageQuota: 5, messageWindowHours: 48, eventQuota: 3, eventWindowSeconds: 60 };
}
