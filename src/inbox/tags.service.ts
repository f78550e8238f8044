/**
 * CRM tags on identities, for targeting notices. Tags belong to a merchant: they are stored
 * as `<merchantId>:<tag>` in `identities.tags`, and a merchant (through the API) or an admin
 * acting for it reads and replaces only its own, so merchants sharing an official account
 * never see or clobber each other's (ASVS 8.4.1). Unfollowing clears them
 * (identities.queries.ts).
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';

export const tagSchema = z.string().regex(/^[\p{L}\p{N}_.-]{1,32}$/u, 'letters, digits, _ . - (1–32)');
export const tagListSchema = z.array(tagSchema).max(20).refine((t) => new Set(t).size === t.length, 'tags must be unique');

const prefix = (merchantId: string) => `${merchantId}:`;
const own = (merchantId: string, stored: string[]) =>
  stored.filter((t) => t.startsWith(prefix(merchantId))).map((t) => t.slice(prefix(merchantId).length));

/** Replaces the merchant's tags on an identity; returns them (without the prefix), or null when there is no such identity. */
export async function setIdentityTags(q: Queryable, p: { identityId: string; merchantId: string; tags: string[] }): Promise<string[] | null> {
  const tags = tagListSchema.parse(p.tags);
  const r = await q.query<{ tags: string[] }>(
    `UPDATE identities
        SET tags = ARRAY(SELECT t FROM unnest(tags) AS t WHERE left(t, length($2)) <> $2) || $3::text[],
            updated_at = now()
      WHERE id = $1
      RETURNING tags`,
    [p.identityId, prefix(p.merchantId), tags.map((t) => prefix(p.merchantId) + t)],
  );
  const row = r.rows[0];
  return row ? own(p.merchantId, row.tags) : null;
}

export async function getIdentityTags(q: Queryable, p: { identityId: string; merchantId: string }): Promise<string[] | null> {
  const r = await q.query<{ tags: string[] }>(`SELECT tags FROM identities WHERE id = $1`, [p.identityId]);
  const row = r.rows[0];
  return row ? own(p.merchantId, row.tags) : null;
}

/**
 * Followers of an account carrying any (or all) of a merchant's tags: the audience of a
 * tag-targeted notice. Unfollowed identities are left out (WeChat would refuse them, 43004).
 */
export async function findIdentitiesByTags(
  q: Queryable,
  p: { appId: string; merchantId: string; tags: string[]; match?: 'any' | 'all'; limit?: number; afterId?: string },
): Promise<{ id: string; openid: string }[]> {
  const tags = tagListSchema.parse(p.tags).map((t) => prefix(p.merchantId) + t);
  if (tags.length === 0) return [];
  const op = p.match === 'all' ? '@>' : '&&';
  const r = await q.query<{ id: string; openid: string }>(
    `SELECT id, openid FROM identities
      WHERE app_id = $1 AND subscribed IS TRUE AND tags ${op} $2::text[] AND ($3::uuid IS NULL OR id > $3::uuid)
      ORDER BY id LIMIT $4`,
    [p.appId, tags, p.afterId ?? null, p.limit ?? 1000],
  );
  return r.rows;
}
