/**
 * SQL for WeChat identities and pairwise subjects (STYLE.md rule 6). An identity is keyed
 * on (app_id, openid) and never re-keyed; `unionid` is filled when it first appears and
 * joins the identity to the person who already has it (migration 201).
 * Rows read back are checked with zod: a column drifting from its type is a bug to catch.
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';
import { randomId } from '../security/secrets.ts';
import { date, isUuid, json } from '../store/rows.ts';
import type { Identity } from './types.ts';

const locationSchema = z.object({ latitude: z.number(), longitude: z.number(), precision: z.number().optional(), at: z.string() }).nullable();

const identityRow = z.object({
  id: z.string(),
  app_id: z.string(),
  openid: z.string(),
  unionid: z.string().nullable(),
  person_id: z.string(),
  nickname: z.string().nullable(),
  avatar_url: z.string().nullable(),
  subscribed: z.boolean().nullable(),
  last_interaction_at: date.nullable(),
  last_location: json(locationSchema),
  tags: z.array(z.string()),
  created_at: date,
});

const COLUMNS = 'id, app_id, openid, unionid, person_id, nickname, avatar_url, subscribed, last_interaction_at, last_location, tags, created_at';

export interface IdentityRecord extends Identity {
  personId: string;
}

function toIdentity(row: unknown): IdentityRecord {
  const r = identityRow.parse(row);
  return {
    id: r.id,
    appId: r.app_id,
    openid: r.openid,
    unionid: r.unionid,
    personId: r.person_id,
    nickname: r.nickname,
    avatarUrl: r.avatar_url,
    subscribed: r.subscribed,
    lastInteractionAt: r.last_interaction_at,
    lastLocation: r.last_location,
    tags: r.tags,
    createdAt: r.created_at,
  };
}

export async function findIdentityById(q: Queryable, id: string): Promise<IdentityRecord | null> {
  if (!isUuid(id)) return null;
  const r = await q.query(`SELECT ${COLUMNS} FROM identities WHERE id = $1`, [id]);
  return r.rows[0] ? toIdentity(r.rows[0]) : null;
}

export async function findIdentityByOpenid(q: Queryable, appId: string, openid: string): Promise<IdentityRecord | null> {
  const r = await q.query(`SELECT ${COLUMNS} FROM identities WHERE app_id = $1 AND openid = $2`, [appId, openid]);
  return r.rows[0] ? toIdentity(r.rows[0]) : null;
}

/** Identities of the person with this unionid on one official account (at most one). */
export async function findIdentityByUnionid(q: Queryable, appId: string, unionid: string): Promise<IdentityRecord | null> {
  const r = await q.query(`SELECT ${COLUMNS} FROM identities WHERE app_id = $1 AND unionid = $2 ORDER BY created_at LIMIT 1`, [appId, unionid]);
  return r.rows[0] ? toIdentity(r.rows[0]) : null;
}

export interface IdentityUpsert {
  appId: string;
  openid: string;
  unionid?: string | null;
  /** Only when snsapi_userinfo was granted; otherwise the stored profile is left alone. */
  profile?: { nickname: string; avatarUrl: string } | null;
  at: Date;
  /** A web-authorization login (sets last_login_at) rather than a pushed event. */
  login?: boolean;
  subscribed?: boolean;
}

/**
 * Atomic upsert on (app_id, openid) (SECURITY.md D5). A unionid already stored is never
 * overwritten: WeChat gives one per user and Open Platform, and a different one later
 * would be a snapshot or a bug, not a reason to re-key.
 */
export async function upsertIdentity(q: Queryable, u: IdentityUpsert): Promise<IdentityRecord> {
  const r = await q.query(
    `INSERT INTO identities (app_id, openid, unionid, nickname, avatar_url, profile_updated_at, subscribed,
        subscribed_at, unsubscribed_at, last_interaction_at, last_login_at)
     VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN $7::timestamptz END, $8,
        CASE WHEN $8 IS TRUE THEN $7::timestamptz END, CASE WHEN $8 IS FALSE THEN $7::timestamptz END,
        $7, CASE WHEN $9 THEN $7::timestamptz END)
     ON CONFLICT ON CONSTRAINT identities__app_id_openid DO UPDATE SET
        unionid = COALESCE(identities.unionid, EXCLUDED.unionid),
        nickname = CASE WHEN $6 THEN EXCLUDED.nickname ELSE identities.nickname END,
        avatar_url = CASE WHEN $6 THEN EXCLUDED.avatar_url ELSE identities.avatar_url END,
        profile_updated_at = CASE WHEN $6 THEN EXCLUDED.profile_updated_at ELSE identities.profile_updated_at END,
        subscribed = COALESCE(EXCLUDED.subscribed, identities.subscribed),
        subscribed_at = CASE WHEN $8 IS TRUE AND identities.subscribed IS NOT TRUE THEN $7::timestamptz ELSE identities.subscribed_at END,
        unsubscribed_at = CASE WHEN $8 IS FALSE AND identities.subscribed IS NOT FALSE THEN $7::timestamptz ELSE identities.unsubscribed_at END,
        last_interaction_at = GREATEST(identities.last_interaction_at, EXCLUDED.last_interaction_at),
        last_login_at = COALESCE(EXCLUDED.last_login_at, identities.last_login_at),
        updated_at = now()
     RETURNING ${COLUMNS}`,
    [
      u.appId,
      u.openid,
      u.unionid ?? null,
      u.profile?.nickname ?? null,
      u.profile?.avatarUrl || null,
      u.profile !== undefined && u.profile !== null,
      u.at.toISOString(),
      u.subscribed ?? null,
      u.login === true,
    ],
  );
  return toIdentity(r.rows[0]);
}

/**
 * Joins every identity with this unionid to one person: the oldest one's. Serialised per
 * unionid by an advisory lock, so two official accounts seeing the user at once still end
 * with one person id.
 */
export async function reconcileUnionid(q: Queryable, unionid: string): Promise<void> {
  await q.query(`SELECT pg_advisory_xact_lock(hashtextextended('wxb:unionid:' || $1, 0))`, [unionid]);
  await q.query(
    `UPDATE identities SET person_id = p.person_id, updated_at = now()
       FROM (SELECT person_id FROM identities WHERE unionid = $1 ORDER BY created_at, id LIMIT 1) p
      WHERE identities.unionid = $1 AND identities.person_id <> p.person_id`,
    [unionid],
  );
}

/**
 * The pairwise subject, created on first use (random, opaque, never derived from WeChat ids).
 * Read first: every login after the first finds it, and a login writes nothing for it
 * (SECURITY.md T14). Two first uses at once both insert; the loser's row is not written and
 * it reads the winner's.
 */
export async function ensureSubject(q: Queryable, merchantId: string, identityId: string): Promise<string> {
  const read = () => q.query<{ sub: string }>('SELECT sub FROM subjects WHERE merchant_id = $1 AND identity_id = $2', [merchantId, identityId]);
  const found = await read();
  if (found.rows[0]) return z.string().parse(found.rows[0].sub);
  const made = await q.query<{ sub: string }>(
    `INSERT INTO subjects (merchant_id, identity_id, sub) VALUES ($1, $2, $3)
     ON CONFLICT ON CONSTRAINT subjects__pkey DO NOTHING RETURNING sub`,
    [merchantId, identityId, randomId(16)],
  );
  return z.string().parse((made.rows[0] ?? (await read()).rows[0])?.sub);
}

export async function findSubject(q: Queryable, merchantId: string, sub: string): Promise<{ identityId: string } | null> {
  const r = await q.query<{ identity_id: string }>('SELECT identity_id FROM subjects WHERE merchant_id = $1 AND sub = $2', [merchantId, sub]);
  return r.rows[0] ? { identityId: z.string().parse(r.rows[0].identity_id) } : null;
}
