/**
 * SQL of accounts made by single sign-on (migration 600's admin_accounts): no password
 * (the company's provider authenticates them; local sign-in refuses an account without
 * one) and nothing to change at the first sign-in.
 */
import type { Queryable } from '../store/db.ts';
import { findAccountByEmail, type AccountRow } from './accounts.queries.ts';
import type { Role } from './policy.ts';

/** Null when an account with this email exists already (made at the same moment by another sign-in). */
export async function insertSsoAccount(q: Queryable, a: { email: string; role: Role; merchantId: string | null; createdBy: string; at: Date }): Promise<AccountRow | null> {
  const r = await q.query(
    `INSERT INTO admin_accounts (email, role, merchant_id, password_hash, must_change_password, created_by, created_at, updated_at)
     VALUES ($1, $2, $3, NULL, false, $4, $5, $5)
     ON CONFLICT ON CONSTRAINT admin_accounts__email DO NOTHING`,
    [a.email.trim().toLowerCase(), a.role, a.merchantId, a.createdBy, a.at.toISOString()],
  );
  return r.rowCount > 0 ? findAccountByEmail(q, a.email) : null;
}
