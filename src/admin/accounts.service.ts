/**
 * Admin accounts: made by the CLI, by the demo's first start, or by an admin in the UI;
 * never a default account (ASVS 6.3.2). A new account gets a random one-time password
 * shown once to whoever made it, must change it at first sign-in, and must enrol TOTP.
 */
import type { Db } from '../store/db.ts';
import { hashSecret, randomId, verifySecret } from '../security/secrets.ts';
import { AppError } from '../http/errors.ts';
import * as A from './accounts.queries.ts';
import type { ActorRef, AdminAudit } from './audit.service.ts';
import type { Role } from './policy.ts';
import type { SessionsService } from './sessions.service.ts';

export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 128;

export interface AccountsService {
  create(p: { email: string; role: Role; merchantId: string | null; who: ActorRef }): Promise<{ account: A.AdminAccount; oneTimePassword: string }>;
  /** The first demo admin, made only when no account exists yet; null otherwise. */
  createFirstDemoAdmin(email: string): Promise<{ account: A.AdminAccount; oneTimePassword: string } | null>;
  changePassword(p: { adminId: string; current: string; next: string; who: ActorRef; sessionId: string }): Promise<'ok' | 'wrong_password' | 'weak'>;
  list(): Promise<A.AdminAccount[]>;
  get(id: string): Promise<A.AdminAccount | null>;
  updateAccess(p: { id: string; role: Role; merchantId: string | null; disabled: boolean; who: ActorRef }): Promise<A.AdminAccount>;
  resetTotp(p: { id: string; who: ActorRef }): Promise<void>;
}

/** Length rules only (ASVS 6.2.1/6.2.9): no composition rules, any characters, up to 128. */
export function passwordProblem(pw: string): string | null {
  if (pw.length < PASSWORD_MIN) return `at least ${PASSWORD_MIN} characters`;
  if (pw.length > PASSWORD_MAX) return `at most ${PASSWORD_MAX} characters`;
  return null;
}

export function createAccountsService(deps: { db: Db; now: () => number; audit: AdminAudit; sessions: SessionsService; merchantExists: (id: string) => boolean }): AccountsService {
  const { db } = deps;
  const at = () => new Date(deps.now());

  async function insert(email: string, role: Role, merchantId: string | null, createdBy: string) {
    if (!/^[^\s@]+@[^\s@]+$/.test(email.trim()) || email.length > 254) throw new AppError('request.invalid', 'not an email address');
    if (merchantId !== null && !deps.merchantExists(merchantId)) throw new AppError('request.invalid', `unknown merchant '${merchantId}'`);
    const oneTimePassword = randomId(15);
    const row = await A.insertAccount(db, { email, role, merchantId, passwordHash: await hashSecret(oneTimePassword), createdBy, at: at() });
    if (!row) throw new AppError('request.conflict', 'an account with this email exists');
    return { account: A.toAccount(row), oneTimePassword };
  }

  return {
    async create({ email, role, merchantId, who }) {
      const out = await insert(email, role, merchantId, who.actor);
      await deps.audit.record(who, { action: 'admin.created', merchantId, detail: { admin: out.account.id, email: out.account.email }, after: { role, merchant: merchantId } });
      return out;
    },

    async createFirstDemoAdmin(email) {
      if ((await A.countAccounts(db)) > 0) return null;
      const out = await insert(email, 'admin', null, 'system:demo');
      await deps.audit.record({ actor: 'system:demo', source: 'start' }, { action: 'admin.created', detail: { admin: out.account.id, email }, after: { role: 'admin', merchant: null } });
      return out;
    },

    async changePassword({ adminId, current, next, who, sessionId }) {
      const row = await A.findAccountById(db, adminId);
      if (!row?.password_hash || !(await verifySecret(current, row.password_hash))) return 'wrong_password';
      if (passwordProblem(next) || next === current) return 'weak';
      await A.setPassword(db, adminId, await hashSecret(next), false, at());
      // Other sessions may belong to whoever knew the old password (ASVS 7.4.3).
      const ended = await deps.sessions.revokeAll({ adminId, by: who.actor, exceptId: sessionId });
      await deps.audit.record(who, { action: 'admin.password_changed', detail: { otherSessionsEnded: ended } });
      return 'ok';
    },

    list: async () => (await A.listAccounts(db)).map(A.toAccount),
    get: async (id) => {
      const row = await A.findAccountById(db, id);
      return row ? A.toAccount(row) : null;
    },

    async updateAccess({ id, role, merchantId, disabled, who }) {
      const before = await A.findAccountById(db, id);
      if (!before) throw new AppError('request.not_found');
      if (merchantId !== null && !deps.merchantExists(merchantId)) throw new AppError('request.invalid', `unknown merchant '${merchantId}'`);
      if (who.actor === `admin:${id}` && (role !== 'admin' || merchantId !== null || disabled))
        throw new AppError('request.conflict', 'you cannot lower or disable your own access');
      await A.updateAccess(db, id, { role, merchantId, disabled }, at());
      if (disabled && !before.disabled_at) await deps.sessions.revokeAll({ adminId: id, by: who.actor });
      await deps.audit.record(who, {
        action: 'admin.access_changed',
        merchantId: merchantId ?? before.merchant_id,
        detail: { admin: id },
        before: { role: before.role, merchant: before.merchant_id, disabled: before.disabled_at !== null },
        after: { role, merchant: merchantId, disabled },
      });
      return A.toAccount((await A.findAccountById(db, id)) as A.AccountRow);
    },

    async resetTotp({ id, who }) {
      if (!(await A.findAccountById(db, id))) throw new AppError('request.not_found');
      await A.resetTotp(db, id, at());
      // The old authenticator is no longer a factor: every session of the account ends.
      await deps.sessions.revokeAll({ adminId: id, by: who.actor });
      await deps.audit.record(who, { action: 'admin.totp_reset', detail: { admin: id } });
    },
  };
}
