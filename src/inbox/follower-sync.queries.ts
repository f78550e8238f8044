/**
 * SQL of the follower sync: its cursor (`follower_syncs`, migration 400) and the subscribe
 * state it writes on `identities`. See follower-sync.ts for the algorithm.
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';
import type { FollowerInfo } from '../wechat/api-users.ts';
import { UNSUBSCRIBED_SET } from './identities.queries.ts';

const cursorRow = z.object({
  run_started_at: z.coerce.date().nullable(),
  page_cursor: z.string(),
  done_through: z.string().nullable(),
  page_offset: z.coerce.number().int(),
  synced: z.coerce.number().int(),
  total: z.coerce.number().int().nullable(),
  last_finished_at: z.coerce.date().nullable(),
});
export type SyncCursor = z.infer<typeof cursorRow>;

const COLUMNS = 'run_started_at, page_cursor, done_through, page_offset, synced, total, last_finished_at';

export async function loadCursor(q: Queryable, appId: string): Promise<SyncCursor | null> {
  const r = await q.query(`SELECT ${COLUMNS} FROM follower_syncs WHERE app_id = $1`, [appId]);
  return r.rows[0] ? cursorRow.parse(r.rows[0]) : null;
}

export async function startRun(q: Queryable, appId: string, at: Date): Promise<SyncCursor> {
  const r = await q.query(
    `INSERT INTO follower_syncs (app_id, run_started_at) VALUES ($1, $2)
     ON CONFLICT (app_id) DO UPDATE SET run_started_at = $2, page_cursor = '', done_through = NULL, page_offset = 0,
       synced = 0, total = NULL, updated_at = now()
     RETURNING ${COLUMNS}`,
    [appId, at],
  );
  return cursorRow.parse(r.rows[0]);
}

export async function saveProgress(
  q: Queryable,
  appId: string,
  p: Pick<SyncCursor, 'page_cursor' | 'done_through' | 'page_offset' | 'synced' | 'total'>,
): Promise<SyncCursor> {
  const r = await q.query(
    `UPDATE follower_syncs SET page_cursor = $2, done_through = $3, page_offset = $4, synced = $5, total = $6, updated_at = now()
      WHERE app_id = $1 RETURNING ${COLUMNS}`,
    [appId, p.page_cursor, p.done_through, p.page_offset, p.synced, p.total],
  );
  return cursorRow.parse(r.rows[0]);
}

export async function finishRun(q: Queryable, appId: string, at: Date): Promise<void> {
  await q.query(`UPDATE follower_syncs SET run_started_at = NULL, last_finished_at = $2, updated_at = now() WHERE app_id = $1`, [appId, at]);
}

/** A change of subscribe state the sync made on an identity that an active binding links to a merchant. */
export interface LinkedChange {
  identityId: string;
  at: Date;
}

const idRow = z.object({ id: z.string() });
const stateRow = z.object({ id: z.string(), subscribed: z.boolean().nullable() });
const changedRow = z.object({ id: z.string(), at: z.coerce.date() });
const upsertedRow = stateRow.extend({ at: z.coerce.date() });

/** Of the identities whose state changed, those with an active binding: the ones merchants hear about. */
async function linkedOnly(q: Queryable, changed: { id: string; at: Date }[]): Promise<LinkedChange[]> {
  if (changed.length === 0) return [];
  const r = await q.query(`SELECT DISTINCT identity_id AS id FROM bindings WHERE identity_id = ANY ($1::uuid[]) AND status = 'active'`, [
    changed.map((c) => c.id),
  ]);
  const linked = new Set(r.rows.map((x) => idRow.parse(x).id));
  return changed.filter((c) => linked.has(c.id)).map((c) => ({ identityId: c.id, at: c.at }));
}

/**
 * Writes one batch of followers. A follow or unfollow event applied after `fetchedAt` is newer
 * than this snapshot and wins; the identity is marked seen by this run either way.
 *
 * Returns the linked identities this batch turned to subscribed (from unsubscribed or
 * unknown, as the push path counts a change), for their `identity.subscribed` webhooks. The
 * rows are locked first (in id order) so their state before the write is the one the write
 * replaces: a push cannot slip in between and be announced twice. A row missing from that
 * snapshot is one this batch creates (or one created by someone else in the instant between
 * the two statements): it has no binding yet, so there is nobody to tell.
 */
export async function upsertFollowers(q: Queryable, p: { appId: string; runStartedAt: Date; fetchedAt: Date; infos: FollowerInfo[] }): Promise<LinkedChange[]> {
  const rows = p.infos
    .filter((u) => u.subscribed)
    .map((u) => ({
      openid: u.openid,
      unionid: u.unionid ?? null,
      subscribed_at: u.subscribed && u.subscribeTime > 0 ? new Date(u.subscribeTime * 1000).toISOString() : null,
    }));
  if (rows.length === 0) return [];
  const before = await q.query(`SELECT id, subscribed FROM identities WHERE app_id = $1 AND openid = ANY ($2::text[]) ORDER BY id FOR UPDATE`, [
    p.appId,
    rows.map((u) => u.openid),
  ]);
  const wasSubscribed = new Map(before.rows.map((x) => stateRow.parse(x)).map((row) => [row.id, row.subscribed] as const));
  const r = await q.query(
    `INSERT INTO identities (app_id, openid, unionid, subscribed, subscribed_at, follower_seen_at)
     SELECT $1, u.openid, u.unionid, true, u.subscribed_at, $2
       FROM jsonb_to_recordset($4::jsonb) AS u(openid text, unionid text, subscribed_at timestamptz)
     ON CONFLICT (app_id, openid) DO UPDATE SET
       unionid = COALESCE(identities.unionid, EXCLUDED.unionid),
       follower_seen_at = EXCLUDED.follower_seen_at,
       subscribed = CASE WHEN GREATEST(COALESCE(identities.subscribed_at, '-infinity'), COALESCE(identities.unsubscribed_at, '-infinity')) < $3
                         THEN true ELSE identities.subscribed END,
       subscribed_at = CASE WHEN GREATEST(COALESCE(identities.subscribed_at, '-infinity'), COALESCE(identities.unsubscribed_at, '-infinity')) < $3
                            THEN COALESCE(EXCLUDED.subscribed_at, identities.subscribed_at) ELSE identities.subscribed_at END,
       updated_at = now()
     RETURNING id, subscribed, COALESCE(subscribed_at, $3) AS at`,
    [p.appId, p.runStartedAt, p.fetchedAt, JSON.stringify(rows)],
  );
  const changed = r.rows
    .map((x) => upsertedRow.parse(x))
    .filter((row) => row.subscribed === true && wasSubscribed.has(row.id) && wasSubscribed.get(row.id) !== true);
  return linkedOnly(q, changed);
}

/**
 * After a complete run: followers we hold as subscribed that the list no longer has have
 * left. Returns how many, and the linked ones for their `identity.unsubscribed` webhooks
 * (every row updated was subscribed, so each is a change).
 */
export async function markMissingUnsubscribed(q: Queryable, p: { appId: string; runStartedAt: Date; at: Date }): Promise<{ count: number; linked: LinkedChange[] }> {
  const r = await q.query(
    `UPDATE identities SET ${UNSUBSCRIBED_SET}, unsubscribed_at = $3
      WHERE app_id = $1 AND subscribed IS TRUE
        AND (follower_seen_at IS NULL OR follower_seen_at < $2)
        AND COALESCE(subscribed_at, '-infinity') < $2
      RETURNING id, unsubscribed_at AS at`,
    [p.appId, p.runStartedAt, p.at],
  );
  const changed = r.rows.map((x) => changedRow.parse(x));
  return { count: changed.length, linked: await linkedOnly(q, changed) };
}
