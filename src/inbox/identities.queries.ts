/**
 * The inbox's SQL over `identities` (migration 200, owned by linking): the columns the push
 * and the follower sync keep — subscribe state, last interaction, last location, tags — and
 * read-only lookups of bindings and subjects for the identity webhooks. An identity is
 * created on first sight with `INSERT … ON CONFLICT (app_id, openid)`, which is safe against
 * the linking feature creating the same row concurrently.
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';

const lockedRow = z.object({
  id: z.string(),
  subscribed: z.boolean().nullable(),
  subscribed_at: z.coerce.date().nullable(),
  unsubscribed_at: z.coerce.date().nullable(),
});
export type LockedIdentity = z.infer<typeof lockedRow>;

/** Creates the identity if needed and locks its row for the rest of the transaction. */
export async function lockIdentity(q: Queryable, appId: string, openid: string): Promise<LockedIdentity> {
  const r = await q.query(
    `INSERT INTO identities (app_id, openid) VALUES ($1, $2)
     ON CONFLICT (app_id, openid) DO UPDATE SET updated_at = now()
     RETURNING id, subscribed, subscribed_at, unsubscribed_at`,
    [appId, openid],
  );
  return lockedRow.parse(r.rows[0]);
}

export async function markSubscribed(q: Queryable, identityId: string, at: Date): Promise<void> {
  await q.query(`UPDATE identities SET subscribed = true, subscribed_at = $2, updated_at = now() WHERE id = $1`, [identityId, at]);
}

/**
 * WeChat asks developers to delete a user's data when they unfollow (wechat-protocol.md §5.5):
 * the location and the CRM tags go; the identity and its bindings stay (web authorization
 * still works for non-followers, and bindings have their own lifecycle).
 */
export const UNSUBSCRIBED_SET = `subscribed = false, last_location = NULL, tags = '{}', updated_at = now()`;

export async function markUnsubscribed(q: Queryable, identityId: string, at: Date): Promise<void> {
  await q.query(`UPDATE identities SET ${UNSUBSCRIBED_SET}, unsubscribed_at = $2 WHERE id = $1`, [identityId, at]);
}

/** A user who talks to the account follows it; an unknown subscribe state becomes true. */
export async function touchInteraction(q: Queryable, appId: string, openid: string, at: Date): Promise<void> {
  await q.query(
    `INSERT INTO identities (app_id, openid, last_interaction_at, subscribed) VALUES ($1, $2, $3, true)
     ON CONFLICT (app_id, openid) DO UPDATE SET
       last_interaction_at = GREATEST(identities.last_interaction_at, EXCLUDED.last_interaction_at),
       subscribed = COALESCE(identities.subscribed, true),
       updated_at = now()`,
    [appId, openid, at],
  );
}

export interface LastLocation {
  latitude: number;
  longitude: number;
  precision?: number;
  at: string;
}

export async function saveLocation(q: Queryable, appId: string, openid: string, loc: LastLocation): Promise<void> {
  await q.query(
    `INSERT INTO identities (app_id, openid, last_location) VALUES ($1, $2, $3::jsonb)
     ON CONFLICT (app_id, openid) DO UPDATE SET last_location = EXCLUDED.last_location, updated_at = now()`,
    [appId, openid, JSON.stringify(loc)],
  );
}

const targetRow = z.object({ merchant_id: z.string(), id: z.string(), account_id: z.string(), sub: z.string().nullable() });

export interface WebhookTarget {
  merchantId: string;
  sub: string | null;
  bindings: { id: string; account: string }[];
}

/** Merchants that hold an active binding of this identity: the ones told about (un)follows. */
export async function webhookTargets(q: Queryable, identityId: string): Promise<WebhookTarget[]> {
  const r = await q.query(
    `SELECT b.merchant_id, b.id, b.account_id, s.sub
       FROM bindings b
       LEFT JOIN subjects s ON s.merchant_id = b.merchant_id AND s.identity_id = b.identity_id
      WHERE b.identity_id = $1 AND b.status = 'active'
      ORDER BY b.merchant_id, b.created_at`,
    [identityId],
  );
  const out = new Map<string, WebhookTarget>();
  for (const raw of r.rows) {
    const row = targetRow.parse(raw);
    const t = out.get(row.merchant_id) ?? { merchantId: row.merchant_id, sub: row.sub, bindings: [] };
    t.bindings.push({ id: row.id, account: row.account_id });
    out.set(row.merchant_id, t);
  }
  return [...out.values()];
}
