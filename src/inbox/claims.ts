/**
 * Push de-duplication across all instances (wechat-protocol.md §5.7; SECURITY.md D5, D1).
 *
 * A push is claimed atomically before anything is acted on: one `SET NX PX` in the Kv holding
 * "pending since t"; an owner still working renews t, so only a dead owner's claim goes
 * stale. The owner acts, then marks the claim done with the reply it sent, so a
 * retry of a message still in progress can wait for that reply and a retry of one already
 * answered gets it at once. On failure the owner releases the claim, so WeChat's retry can
 * do the work.
 *
 * Kv down (D1): the claim falls back to a Postgres row with the same key as primary key
 * (`inbox_claims`). For one TTL after the Kv last failed, a fresh Kv claim is also checked
 * against Postgres, so a retry that lands after the Kv came back still finds a claim made
 * during the outage. Both down: the error propagates, the route answers 5xx and WeChat
 * retries later.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { parseStored } from '../store/rows.ts';
import type { Db } from '../store/db.ts';
import { digest, keyspace, ttl } from '../store/keyspace.ts';
import type { Kv } from '../store/kv.ts';
import { createKvOutage } from './kv-outage.ts';
import { replySchema, type Reply } from './reply.ts';

type Source = 'kv' | 'db';

export interface ClaimOwner {
  kind: 'owner';
  /** Records the reply that was sent (null for `success`). */
  complete(reply: Reply | null): Promise<void>;
  /** Gives the push back, so that a retry acts on it. */
  release(): Promise<void>;
  /** "Still working": restarts the pending claim's clock, so no retry takes over a live owner. */
  renew(): Promise<void>;
}

export type ClaimView = { kind: 'pending'; startedAt: number; source: Source } | { kind: 'done'; reply: Reply | null };
export type ClaimResult = ClaimOwner | ClaimView;

export interface ClaimStore {
  claim(appId: string, key: string): Promise<ClaimResult>;
  /** Someone else's claim as it stands now; null once it is gone (released or expired). */
  read(appId: string, key: string): Promise<ClaimView | null>;
  /** Takes over a pending claim whose owner is presumed dead; at most one caller wins. */
  takeOver(appId: string, key: string, stale: { startedAt: number; source: Source }): Promise<ClaimOwner | null>;
  /** Deletes Postgres claims older than `olderThanMs`. */
  prune(olderThanMs: number): Promise<number>;
}

const kvRecord = z.discriminatedUnion('s', [
  z.object({ s: z.literal('p'), t: z.number() }),
  z.object({ s: z.literal('d'), r: replySchema.nullable() }),
]);
const dbRow = z.object({ state: z.enum(['pending', 'done']), reply: replySchema.nullable(), started_at: z.coerce.number() });

export function createClaimStore(o: { kv: Kv; db: Db; now: () => number; log: Logger; ttlMs?: number }): ClaimStore {
  const { kv, db, now, log } = o;
  const ttlMs = o.ttlMs ?? ttl.pushDedupe;
  const outage = createKvOutage({ now, windowMs: ttlMs, log, component: 'inbox.claims', fallback: 'push de-duplication' });
  const degraded = outage.degraded;
  const kKey = (appId: string, key: string) => keyspace.inbox.dedupe(appId, key);

  const kvDown = (err: unknown): void => outage.noted(err);

  function parseKv(raw: string): ClaimView {
    const r = parseStored(kvRecord, raw);
    // An unreadable claim still means "claimed": acknowledging without acting is the safe side.
    if (!r) return { kind: 'done', reply: null };
    return r.s === 'p' ? { kind: 'pending', startedAt: r.t, source: 'kv' } : { kind: 'done', reply: r.r };
  }

  /** `kvKey`: the claim's Kv key when the caller already derived it (one SHA-256 per push, not three). */
  function owner(appId: string, key: string, sinks: Source[], kvKey?: string): ClaimOwner {
    const kk = () => (kvKey ??= kKey(appId, key));
    return {
      kind: 'owner',
      async complete(reply) {
        const writes: Promise<unknown>[] = [];
        if (sinks.includes('kv')) writes.push(kv.set(kk(), JSON.stringify({ s: 'd', r: reply }), ttlMs).catch(kvDown));
        if (sinks.includes('db'))
          writes.push(
            db.query(`UPDATE inbox_claims SET state = 'done', reply = $3 WHERE app_id = $1 AND dedupe_key = $2`, [appId, digest(key), JSON.stringify(reply)]),
          );
        await Promise.all(writes);
      },
      async release() {
        const writes: Promise<unknown>[] = [];
        if (sinks.includes('kv')) writes.push(kv.del(kk()).catch(kvDown));
        if (sinks.includes('db')) writes.push(db.query(`DELETE FROM inbox_claims WHERE app_id = $1 AND dedupe_key = $2`, [appId, digest(key)]));
        await Promise.allSettled(writes);
      },
      async renew() {
        const t = now();
        const writes: Promise<unknown>[] = [];
        if (sinks.includes('kv')) writes.push(kv.set(kk(), JSON.stringify({ s: 'p', t }), ttlMs).catch(kvDown));
        if (sinks.includes('db'))
          writes.push(db.query(`UPDATE inbox_claims SET started_at = $3 WHERE app_id = $1 AND dedupe_key = $2 AND state = 'pending'`, [appId, digest(key), t]));
        await Promise.allSettled(writes);
      },
    };
  }

  async function dbRead(appId: string, key: string): Promise<ClaimView | null> {
    const r = await db.query(`SELECT state, reply, started_at FROM inbox_claims WHERE app_id = $1 AND dedupe_key = $2`, [appId, digest(key)]);
    if (!r.rows[0]) return null;
    const row = dbRow.parse(r.rows[0]);
    return row.state === 'pending' ? { kind: 'pending', startedAt: row.started_at, source: 'db' } : { kind: 'done', reply: row.reply };
  }

  async function dbClaim(appId: string, key: string, t: number): Promise<ClaimResult> {
    const r = await db.query(
      `INSERT INTO inbox_claims (app_id, dedupe_key, state, started_at) VALUES ($1, $2, 'pending', $3) ON CONFLICT DO NOTHING RETURNING 1 AS ok`,
      [appId, digest(key), t],
    );
    if (r.rows.length === 1) return owner(appId, key, ['db']);
    return (await dbRead(appId, key)) ?? dbClaim(appId, key, t);
  }

  async function claim(appId: string, key: string, attempt = 0): Promise<ClaimResult> {
    const t = now();
    const kvKey = kKey(appId, key);
    try {
      if (await kv.setIfAbsent(kvKey, JSON.stringify({ s: 'p', t }), ttlMs)) {
        if (!degraded()) return owner(appId, key, ['kv'], kvKey);
        // Just after an outage a retry may follow a push claimed in Postgres: ask there too.
        const fromDb = await dbClaim(appId, key, t).catch(() => null);
        if (fromDb === null) return owner(appId, key, ['kv'], kvKey);
        if (fromDb.kind === 'owner') return owner(appId, key, ['kv', 'db'], kvKey);
        await kv.del(kvKey);
        return fromDb;
      }
      const raw = await kv.get(kvKey);
      if (raw !== null) return parseKv(raw);
      // Expired between SET NX and GET: claim again (once is enough; TTLs are minutes).
      return attempt === 0 ? claim(appId, key, 1) : { kind: 'done', reply: null };
    } catch (err) {
      kvDown(err);
      return dbClaim(appId, key, t);
    }
  }

  return {
    claim: (appId, key) => claim(appId, key),

    async read(appId, key) {
      try {
        const raw = await kv.get(kKey(appId, key));
        if (raw !== null) return parseKv(raw);
        return degraded() ? await dbRead(appId, key) : null;
      } catch (err) {
        kvDown(err);
        return dbRead(appId, key);
      }
    },

    async takeOver(appId, key, stale) {
      const t = now();
      if (stale.source === 'db') {
        const r = await db.query(
          `UPDATE inbox_claims SET started_at = $4 WHERE app_id = $1 AND dedupe_key = $2 AND state = 'pending' AND started_at = $3 RETURNING 1 AS ok`,
          [appId, digest(key), stale.startedAt, t],
        );
        return r.rows.length === 1 ? owner(appId, key, ['db']) : null;
      }
      try {
        if (!(await kv.setIfAbsent(keyspace.inbox.takeover(appId, key, stale.startedAt), '1', ttlMs))) return null;
        await kv.set(kKey(appId, key), JSON.stringify({ s: 'p', t }), ttlMs);
        return owner(appId, key, ['kv']);
      } catch (err) {
        kvDown(err);
        return null;
      }
    },

    async prune(olderThanMs) {
      const r = await db.query(`DELETE FROM inbox_claims WHERE created_at < now() - make_interval(secs => $1)`, [olderThanMs / 1000]);
      return r.rowCount;
    },
  };
}
