/**
 * The plaintext replay guard (wechat-protocol.md §5.3; SECURITY.md A9, D1). In plaintext
 * mode `signature` signs only token, timestamp and nonce, not the body or the `openid`
 * query, so within the 300 s freshness window a captured URL could carry any body. The
 * guard binds each signature to the hash of the first body seen with it: the same body
 * again is WeChat's retry (de-duplication answers it), another body is refused.
 *
 * The binding is a `SET NX` in the Kv. Kv down: it is a Postgres row instead
 * (`inbox_replay_guards`), never skipped, since skipping would let a forged push name any
 * user and receive that user's answer. For one TTL after the Kv last failed, a fresh Kv
 * binding is also checked against Postgres, so a replay of a signature first seen during
 * the outage is still caught after the Kv comes back. Both down: the error propagates and
 * the route answers 503; WeChat retries.
 */
import type { Logger } from 'pino';
import { AppError } from '../http/errors.ts';
import type { Db } from '../store/db.ts';
import { keyspace, ttl } from '../store/keyspace.ts';
import type { Kv } from '../store/kv.ts';
import { createKvOutage } from './kv-outage.ts';

export interface ReplayGuard {
  /** Resolves when `bodyHash` is the first (or the same) body seen with `signature`; else a 403. */
  check(appId: string, signature: string, bodyHash: string): Promise<void>;
  /** Deletes Postgres bindings older than the guard's lifetime. */
  prune(): Promise<number>;
}

const reused = (): AppError => new AppError('request.forbidden', 'push refused', { why: 'signature reused with another body' });

export function createReplayGuard(o: { kv: Kv; db: Db; now: () => number; log: Logger; ttlMs?: number }): ReplayGuard {
  const { kv, db, now, log } = o;
  const ttlMs = o.ttlMs ?? ttl.pushReplay;
  const outage = createKvOutage({ now, windowMs: ttlMs, log, component: 'inbox.replay', fallback: 'the plaintext replay guard' });

  /** The body first bound to this signature in Postgres (binding ours when there was none). */
  async function dbBound(appId: string, signature: string, bodyHash: string): Promise<string> {
    const r = await db.query<{ body_hash: string }>(
      `WITH ins AS (
         INSERT INTO inbox_replay_guards (app_id, signature, body_hash) VALUES ($1, $2, $3)
         ON CONFLICT ON CONSTRAINT inbox_replay_guards__pkey DO NOTHING RETURNING body_hash)
       SELECT body_hash FROM ins
       UNION ALL
       SELECT body_hash FROM inbox_replay_guards WHERE app_id = $1 AND signature = $2 AND created_at > now() - make_interval(secs => $4)`,
      [appId, signature, bodyHash, ttlMs / 1000],
    );
    return r.rows[0]?.body_hash ?? bodyHash;
  }

  async function kvBound(appId: string, signature: string, bodyHash: string): Promise<string | null> {
    const key = keyspace.inbox.replay(appId, signature);
    if (await kv.setIfAbsent(key, bodyHash, ttlMs)) return bodyHash;
    return kv.get(key);
  }

  return {
    async check(appId, signature, bodyHash) {
      let bound: string | null;
      try {
        bound = await kvBound(appId, signature, bodyHash);
        // Just after an outage, the signature may have been bound in Postgres meanwhile.
        if (bound === bodyHash && outage.degraded()) bound = await dbBound(appId, signature, bodyHash);
      } catch (err) {
        outage.noted(err);
        bound = await dbBound(appId, signature, bodyHash);
      }
      // null: the Kv binding expired between SET NX and GET, so no other body holds it now.
      if (bound !== null && bound !== bodyHash) throw reused();
    },

    async prune() {
      const r = await db.query(`DELETE FROM inbox_replay_guards WHERE created_at < now() - make_interval(secs => $1)`, [ttlMs / 1000]);
      return r.rowCount;
    },
  };
}
