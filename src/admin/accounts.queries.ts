/**
 * SQL of admin_accounts (migration 600). Rows are checked with zod on the way out; the
 * password hash and sealed TOTP secret never leave the accounts service.
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';
import { date, int, isUuid } from '../store/rows.ts';
import { roles, type Role } from './policy.ts';


const accountRow = z.object({
  id: z.string(),
  email: z.string(),
  role: z.enum(roles),
  merchant_id: z.string().nullable(),
  password_hash: z.string().nullable(),
  must_change_password: z.boolean(),
  totp_secret_sealed: z.string().nullable(),
  totp_enabled_at: date.nullable(),
  totp_last_step: int.nullable(),
  disabled_at: date.nullable(),
  created_by: z.string(),
  created_at: date,
  last_sign_in_at: date.nullable(),
});
export type AccountRow = z.infer<typeof accountRow>;

/** What pages may show of an account. */
export interface AdminAccount {
  id: string;
  email: string;
  role: Role;
  merchantId: string | null;
  mustChangePassword: boolean;
  totpEnabled: boolean;
  disabled: boolean;
  createdBy: string;
  createdAt: Date;
  lastSignInAt: Date | null;
}

const COLUMNS =
  'id, email, role, merchant_id, password_hash, must_change_password, totp_secret_sealed, totp_enabled_at, totp_last_step, disabled_at, created_by, created_at, last_sign_in_at';

export const toAccount = (r: AccountRow): AdminAccount => ({
  id: r.id,
  email: r.email,
  role: r.role,
  merchantId: r.merchant_id,
  mustChangePassword: r.must_change_password,
  totpEnabled: r.totp_enabled_at !== null,
  disabled: r.disabled_at !== null,
  createdBy: r.created_by,
  createdAt: r.created_at,
  lastSignInAt: r.last_sign_in_at,
});

export { isUuid };

export async function findAccountByEmail(q: Queryable, email: string): Promise<AccountRow | null> {
  const r = await q.query(`SELECT ${COLUMNS} FROM admin_accounts WHERE email = $1`, [email.trim().toLowerCase()]);
  return r.rows[0] ? accountRow.parse(r.rows[0]) : null;
}

export async function findAccountById(q: Queryable, id: string): Promise<AccountRow | null> {
  if (!isUuid(id)) return null;
  const r = await q.query(`SELECT ${COLUMNS} FROM admin_accounts WHERE id = $1`, [id]);
  return r.rows[0] ? accountRow.parse(r.rows[0]) : null;
}

export async function listAccounts(q: Queryable): Promise<AccountRow[]> {
  const r = await q.query(`SELECT ${COLUMNS} FROM admin_accounts ORDER BY email`);
  return r.rows.map((row) => accountRow.parse(row));
}

export async function countAccounts(q: Queryable): Promise<number> {
  const r = await q.query<{ n: number | string }>('SELECT count(*) AS n FROM admin_accounts');
  return Number(r.rows[0]?.n ?? 0);
}

/** Null when the email is taken. */
export async function insertAccount(
  q: Queryable,
  a: { email: string; role: Role; merchantId: string | null; passwordHash: string; createdBy: string; at: Date },
): Promise<AccountRow | null> {
  const r = await q.query(
    `INSERT INTO admin_accounts (email, role, merchant_id, password_hash, must_change_password, created_by, created_at, updated_at)
     VALUES ($1, $2, $3, $4, true, $5, $6, $6)
     ON CONFLICT ON CONSTRAINT admin_accounts__email DO NOTHING
     RETURNING ${COLUMNS}`,
    [a.email.trim().toLowerCase(), a.role, a.merchantId, a.passwordHash, a.createdBy, a.at.toISOString()],
  );
  return r.rows[0] ? accountRow.parse(r.rows[0]) : null;
}

export async function setPassword(q: Queryable, id: string, hash: string, mustChange: boolean, at: Date): Promise<void> {
  await q.query('UPDATE admin_accounts SET password_hash = $2, must_change_password = $3, updated_at = $4 WHERE id = $1', [id, hash, mustChange, at.toISOString()]);
}

/** A new, not yet confirmed secret (enrolment restarts if the first one was never confirmed). */
export async function setPendingTotp(q: Queryable, id: string, sealed: string, at: Date): Promise<void> {
  await q.query(
    'UPDATE admin_accounts SET totp_secret_sealed = $2, totp_enabled_at = NULL, totp_last_step = NULL, updated_at = $3 WHERE id = $1',
    [id, sealed, at.toISOString()],
  );
}

/**
 * Records the time step of an accepted code, only if it is later than the last one: the
 * compare is in the statement, so two requests racing with one code cannot both pass.
 */
export async function consumeTotpStep(q: Queryable, id: string, step: number, enableAt: Date | null): Promise<boolean> {
  const r = await q.query(
    `UPDATE admin_accounts SET totp_last_step = $2, totp_enabled_at = COALESCE(totp_enabled_at, $3), updated_at = now()
      WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2) RETURNING id`,
    [id, step, enableAt?.toISOString() ?? null],
  );
  return r.rowCount > 0;
}

export async function updateAccess(q: Queryable, id: string, a: { role: Role; merchantId: string | null; disabled: boolean }, at: Date): Promise<void> {
  await q.query(
    `UPDATE admin_accounts SET role = $2, merchant_id = $3,
        disabled_at = CASE WHEN $4 THEN COALESCE(disabled_at, $5::timestamptz) END, updated_at = $5 WHERE id = $1`,
    [id, a.role, a.merchantId, a.disabled, at.toISOString()],
  );
}

export async function resetTotp(q: Queryable, id: string, at: Date): Promise<void> {
  await q.query('UPDATE admin_accounts SET totp_secret_sealed = NULL, totp_enabled_at = NULL, totp_last_step = NULL, updated_at = $2 WHERE id = $1', [id, at.toISOString()]);
}

export async function markSignedIn(q: Queryable, id: string, at: Date): Promise<void> {
  await q.query('UPDATE admin_accounts SET last_sign_in_at = $2 WHERE id = $1', [id, at.toISOString()]);
}
