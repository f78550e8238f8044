/**
 * The identity activity log (migration 650): the inbox reports each accepted push as
 * metadata (kind, time, intent), and the identity timeline reads it. Written after WeChat
 * was answered, in batches; rows older than `KEEP_MS` are pruned by the writer, at most
 * once an hour.
 */
import { z } from 'zod';
import type { Activity, OnActivity } from '../inbox/activity.ts';
import type { Db, Queryable } from '../store/db.ts';
import { date } from '../store/rows.ts';

const KEEP_MS = 90 * 86_400_000;
const PRUNE_EVERY_MS = 3600_000;

interface Pending {
  a: Activity;
  done: () => void;
  fail: (err: unknown) => void;
}

/**
 * Rows are gathered for `flushMs` (or until `maxBatch`) and written with one INSERT, so a
 * busy account costs a statement per batch, not one per push. Each caller's promise settles
 * when its row is written (the inbox's task tracking, and so shutdown, waits for it).
 */
export function createActivityRecorder(deps: { db: Db; now: () => number; flushMs?: number; maxBatch?: number }): OnActivity {
  const flushMs = deps.flushMs ?? 100;
  const maxBatch = deps.maxBatch ?? 500;
  let prunedAt = 0;
  let pending: Pending[] = [];
  let timer: NodeJS.Timeout | null = null;

  async function flush(): Promise<void> {
    if (timer) clearTimeout(timer);
    timer = null;
    const batch = pending;
    pending = [];
    if (batch.length === 0) return;
    const col = <T>(f: (a: Activity) => T) => batch.map((p) => f(p.a));
    try {
      await deps.db.query(
        `INSERT INTO identity_activity (app_id, openid, kind, intent, merchant_id, at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])`,
        [col((a) => a.appId), col((a) => a.openid), col((a) => a.kind), col((a) => a.intent), col((a) => a.merchantId), col((a) => a.at.toISOString())],
      );
      const t = deps.now();
      if (t - prunedAt >= PRUNE_EVERY_MS) {
        prunedAt = t;
        await deps.db.query('DELETE FROM identity_activity WHERE at < $1', [new Date(t - KEEP_MS)]);
      }
      for (const p of batch) p.done();
    } catch (err) {
      for (const p of batch) p.fail(err);
    }
  }

  return (a: Activity) =>
    new Promise<void>((done, fail) => {
      pending.push({ a, done, fail });
      if (pending.length >= maxBatch) void flush();
      else timer ??= setTimeout(() => void flush(), flushMs);
    });
}

const activityRow = z.object({ kind: z.string(), intent: z.string().nullable(), merchant_id: z.string().nullable(), at: date });
export type ActivityRow = z.infer<typeof activityRow>;

/**
 * One identity's activity, newest first, before `before`. `merchantId` set (a scoped
 * viewer): only pushes routed to that merchant, plus those of no merchant when the official
 * account is that merchant's alone (`accountIsOwn`).
 */
export async function activityOf(
  q: Queryable,
  p: { appId: string; openid: string; merchantId: string | null; accountIsOwn: boolean; before: Date; limit: number },
): Promise<ActivityRow[]> {
  const params: unknown[] = [p.appId, p.openid, p.before, p.limit];
  const scope = p.merchantId === null ? 'TRUE' : `(merchant_id = $${params.push(p.merchantId)}${p.accountIsOwn ? ' OR merchant_id IS NULL' : ''})`;
  const r = await q.query(
    `SELECT kind, intent, merchant_id, at FROM identity_activity
      WHERE app_id = $1 AND openid = $2 AND at < $3 AND ${scope} ORDER BY at DESC LIMIT $4`,
    params,
  );
  return r.rows.map((row) => activityRow.parse(row));
}
