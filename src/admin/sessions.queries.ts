/**
 * SQL of admin_sessions (migration 600). The cookie carries a random token; only its
 * SHA-256 is stored, so a copy of the table opens no session.
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';
import { date, isUuid } from '../store/rows.ts';


const sessionRow = z.object({
  id: z.string(),
  admin_id: z.string(),
  created_at: date,
  last_seen_at: date,
  expires_at: date,
  reauth_at: date,
  ip: z.string().nullable(),
  user_agent: z.string().nullable(),
  revoked_at: date.nullable(),
  method: z.string(),
  email: z.string().optional(),
});
export type SessionRow = z.infer<typeof sessionRow>;

const COLUMNS = 's.id, s.admin_id, s.created_at, s.last_seen_at, s.expires_at, s.reauth_at, s.ip, s.user_agent, s.revoked_at, s.method';

export async function insertSession(
  q: Queryable,
  s: { tokenHash: string; adminId: string; at: Date; expiresAt: Date; ip: string | null; userAgent: string | null; method: string },
): Promise<string> {
  const r = await q.query<{ id: string }>(
    `INSERT INTO admin_sessions (token_hash, admin_id, created_at, last_seen_at, expires_at, reauth_at, ip, user_agent, method)
     VALUES ($1, $2, $3, $3, $4, $3, $5, $6, $7) RETURNING id`,
    [s.tokenHash, s.adminId, s.at.toISOString(), s.expiresAt.toISOString(), s.ip, s.userAgent, s.method],
  );
  return z.string().parse(r.rows[0]?.id);
}

export async function findSessionByTokenHash(q: Queryable, tokenHash: string): Promise<SessionRow | null> {
  const r = await q.query(`SELECT ${COLUMNS} FROM admin_sessions s WHERE s.token_hash = $1`, [tokenHash]);
  return r.rows[0] ? sessionRow.parse(r.rows[0]) : null;
}

export async function touchSession(q: Queryable, id: string, at: Date): Promise<void> {
  await q.query('UPDATE admin_sessions SET last_seen_at = $2 WHERE id = $1 AND revoked_at IS NULL', [id, at.toISOString()]);
}

export async function markReauth(q: Queryable, id: string, at: Date): Promise<void> {
  await q.query('UPDATE admin_sessions SET reauth_at = $2, last_seen_at = $2 WHERE id = $1 AND revoked_at IS NULL', [id, at.toISOString()]);
}

/** Revokes one session; `adminId` (when given) must own it, so an id from a URL cannot end another's. */
export async function revokeSession(q: Queryable, p: { id: string; by: string; at: Date; adminId?: string }): Promise<SessionRow | null> {
  if (!isUuid(p.id)) return null;
  const params: unknown[] = [p.id, p.at.toISOString(), p.by];
  const owner = p.adminId ? `AND s.admin_id = $${params.push(p.adminId)}` : '';
  const r = await q.query(
    `UPDATE admin_sessions s SET revoked_at = $2, revoked_by = $3 WHERE s.id = $1 AND s.revoked_at IS NULL ${owner} RETURNING ${COLUMNS}`,
    params,
  );
  return r.rows[0] ? sessionRow.parse(r.rows[0]) : null;
}

export async function revokeAllSessions(q: Queryable, p: { adminId: string; by: string; at: Date; exceptId?: string }): Promise<number> {
  const r = await q.query(
    `UPDATE admin_sessions SET revoked_at = $2, revoked_by = $3 WHERE admin_id = $1 AND revoked_at IS NULL AND id <> $4`,
    [p.adminId, p.at.toISOString(), p.by, p.exceptId ?? '00000000-0000-0000-0000-000000000000'],
  );
  return r.rowCount;
}

/** Live sessions (not revoked, not past their absolute limit), newest first. */
export async function listLiveSessions(q: Queryable, p: { at: Date; adminId?: string }): Promise<SessionRow[]> {
  const params: unknown[] = [p.at.toISOString()];
  const owner = p.adminId ? `AND s.admin_id = $${params.push(p.adminId)}` : '';
  const r = await q.query(
    `SELECT ${COLUMNS}, a.email FROM admin_sessions s JOIN admin_accounts a ON a.id = s.admin_id
      WHERE s.revoked_at IS NULL AND s.expires_at > $1 ${owner} ORDER BY s.last_seen_at DESC LIMIT 200`,
    params,
  );
  return r.rows.map((row) => sessionRow.parse(row));
}
