/**
 * Read-only SQL for the search page and an identity's page. A WeChat identity belongs to
 * no merchant by itself; a scoped account sees it only when it has a binding or a
 * pairwise subject at that merchant, and then only that merchant's part of it.
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';
import { date, isUuid } from '../store/rows.ts';
import { scopeSql, type Scope } from './policy.ts';


const identityRow = z.object({
  id: z.string(),
  app_id: z.string(),
  openid: z.string(),
  unionid: z.string().nullable(),
  nickname: z.string().nullable(),
  avatar_url: z.string().nullable(),
  subscribed: z.boolean().nullable(),
  subscribed_at: date.nullable(),
  unsubscribed_at: date.nullable(),
  last_interaction_at: date.nullable(),
  last_login_at: date.nullable().optional(),
  last_location: z.preprocess(
    (v) => (typeof v === 'string' ? JSON.parse(v) : v),
    z.object({ latitude: z.number(), longitude: z.number(), precision: z.number().optional(), at: z.string() }).nullable(),
  ),
  tags: z.array(z.string()),
  created_at: date,
});
export type AdminIdentityRow = z.infer<typeof identityRow>;

const COLUMNS = `i.id, i.app_id, i.openid, i.unionid, i.nickname, i.avatar_url, i.subscribed, i.subscribed_at, i.unsubscribed_at,
  i.last_interaction_at, i.last_login_at, i.last_location, i.tags, i.created_at`;

/** "Has something at the scope's merchant": a binding (any status) or a pairwise subject. */
function visible(scope: Scope, params: unknown[]): string {
  if (scope.merchantId === null) return 'TRUE';
  const n = params.push(scope.merchantId);
  return `(EXISTS (SELECT 1 FROM bindings xb WHERE xb.identity_id = i.id AND xb.merchant_id = $${n})
        OR EXISTS (SELECT 1 FROM subjects xs WHERE xs.identity_id = i.id AND xs.merchant_id = $${n}))`;
}

/** Null both when absent and when out of scope; `exists` tells the route which (403 vs 404). */
/**
 * Tags are stored merchant-scoped (`<merchantId>:<tag>`, inbox/tags.service.ts): an admin
 * acting for one merchant sees that merchant's only, never another's on a shared official
 * account (ASVS 8.4.1); a platform admin sees all, prefix and all.
 */
const withScopedTags = (scope: Scope, row: AdminIdentityRow): AdminIdentityRow =>
  scope.merchantId === null ? row : { ...row, tags: row.tags.filter((t) => t.startsWith(`${scope.merchantId}:`)) };

export async function findIdentityForScope(q: Queryable, scope: Scope, id: string): Promise<{ row: AdminIdentityRow | null; exists: boolean }> {
  if (!isUuid(id)) return { row: null, exists: false };
  const params: unknown[] = [id];
  const r = await q.query(`SELECT ${COLUMNS}, ${visible(scope, params)} AS visible FROM identities i WHERE i.id = $1`, params);
  const raw = r.rows[0] as { visible?: boolean } | undefined;
  if (!raw) return { row: null, exists: false };
  return { row: raw.visible ? withScopedTags(scope, identityRow.parse(raw)) : null, exists: true };
}

/** Identities whose openid, unionid or pairwise sub is `term`, or that own the binding or account. */
export async function searchIdentities(q: Queryable, scope: Scope, term: string): Promise<AdminIdentityRow[]> {
  const t = term.trim();
  if (!t) return [];
  const params: unknown[] = [t];
  const subScope = scope.merchantId === null ? '' : ` AND s.merchant_id = $${params.push(scope.merchantId)}`;
  const bScope = scope.merchantId === null ? '' : ` AND b.merchant_id = $${params.length}`;
  const byUuid = isUuid(t) ? ` OR i.id = $1::uuid OR EXISTS (SELECT 1 FROM bindings b WHERE b.identity_id = i.id AND b.id = $1::uuid${bScope})` : '';
  const r = await q.query(
    `SELECT ${COLUMNS} FROM identities i
      WHERE (i.openid = $1 OR i.unionid = $1
         OR EXISTS (SELECT 1 FROM subjects s WHERE s.identity_id = i.id AND s.sub = $1${subScope})
         OR EXISTS (SELECT 1 FROM bindings b WHERE b.identity_id = i.id AND b.account_id = $1${bScope})${byUuid})
        AND ${visible(scope, params)}
      ORDER BY i.created_at DESC LIMIT 50`,
    params,
  );
  return r.rows.map((row) => withScopedTags(scope, identityRow.parse(row)));
}

export interface SubjectRow {
  merchantId: string;
  sub: string;
}

export async function subjectsOf(q: Queryable, scope: Scope, identityId: string): Promise<SubjectRow[]> {
  const params: unknown[] = [identityId];
  const r = await q.query<{ merchant_id: string; sub: string }>(
    `SELECT merchant_id, sub FROM subjects WHERE identity_id = $1 AND ${scopeSql(scope, 'merchant_id', params)} ORDER BY merchant_id`,
    params,
  );
  return r.rows.map((x) => ({ merchantId: x.merchant_id, sub: x.sub }));
}

const loginRow = z.object({ merchant_id: z.string(), client_id: z.string(), amr: z.array(z.string()), created_at: date });
export type LoginRow = z.infer<typeof loginRow>;

/**
 * Sign-ins to merchant apps: each authorization-code exchange of a client with refresh
 * tokens starts a refresh-token family (oauth migration 300), the per-login record kept.
 */
export async function loginsOf(q: Queryable, scope: Scope, p: { identityId: string; before: Date; limit: number }): Promise<LoginRow[]> {
  const params: unknown[] = [p.identityId, p.before, p.limit];
  const r = await q.query(
    `SELECT merchant_id, client_id, amr, created_at FROM refresh_token_families
      WHERE identity_id = $1 AND created_at < $2 AND ${scopeSql(scope, 'merchant_id', params)} ORDER BY created_at DESC LIMIT $3`,
    params,
  );
  return r.rows.map((row) => loginRow.parse(row));
}
