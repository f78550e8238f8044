/**
 * Signing in to /admin: password (scrypt), then a TOTP code (enrolled at the first sign-in;
 * ASVS 6.3.3), then a fresh server-side session. Failed steps of either kind count
 * towards a lockout per email address, known or not, so the lockout says nothing about
 * which addresses exist (ASVS 6.3.x anti-automation; 2.4.1). Attempts are audited for
 * known accounts (16.3.1) and logged without the email or anything typed.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Db } from '../store/db.ts';
import type { Kv } from '../store/kv.ts';
import { digest } from '../store/keyspace.ts';
import type { SecretBox } from '../security/secret-box.ts';
import { hashSecret, randomId, verifySecret } from '../security/secrets.ts';
import * as A from './accounts.queries.ts';
import { adminActor, type AdminAudit } from './audit.service.ts';
import type { Principal } from './policy.ts';
import type { SessionsService } from './sessions.service.ts';
import { adminKeys, type AdminPolicy } from './settings.ts';
import { matchTotp, newTotpSecret, totpUri } from './totp.ts';

export interface From {
  ip: string | null;
  userAgent: string | null;
}

export type PasswordStep = { ok: false; reason: 'invalid' | 'locked' } | { ok: true; preAuthId: string; enrol: boolean };
export type CodeStep = { ok: false; reason: 'invalid' | 'locked' | 'expired' } | { ok: true; token: string; sessionId: string };

export interface SignInService {
  passwordStep(p: { email: string; password: string; from: From }): Promise<PasswordStep>;
  /** The secret to show while enrolling (made on first call), or null when no enrolment is pending. */
  enrolment(preAuthId: string): Promise<{ email: string; secret: string; uri: string } | null>;
  /** The state between the two steps, or null when expired. */
  pending(preAuthId: string): Promise<{ adminId: string; enrol: boolean } | null>;
  codeStep(p: { preAuthId: string; code: string; from: From }): Promise<CodeStep>;
  /** Password + code again, for sensitive actions (ASVS 7.5.1). */
  reauth(p: { principal: Principal; password: string; code: string; from: From }): Promise<boolean>;
}

export interface SignInDeps {
  db: Db;
  kv: Kv;
  log: Logger;
  now: () => number;
  secrets: SecretBox;
  policy: AdminPolicy;
  sessions: SessionsService;
  audit: AdminAudit;
  issuer: string;
}

const preAuthSchema = z.object({ adminId: z.string(), enrol: z.boolean() }).strict();
export const totpContext = (adminId: string) => `admin-totp:${adminId}`;

export function createSignInService(deps: SignInDeps): SignInService {
  const { db, kv, policy } = deps;
  // Unknown emails still cost one scrypt, so timing does not tell which addresses exist.
  let dummyHash: Promise<string> | undefined;
  const dummy = () => (dummyHash ??= hashSecret(randomId(16)));

  const locked = async (email: string) => Number((await kv.get(adminKeys.failures(email))) ?? 0) >= policy.lockoutThreshold;

  async function failed(email: string, account: A.AccountRow | null, step: string, from: From): Promise<'invalid' | 'locked'> {
    const n = await kv.incr(adminKeys.failures(email), policy.lockoutMs);
    deps.log.info({ who: digest(email.trim().toLowerCase()).slice(0, 12), step, failures: n }, 'admin sign-in failed');
    if (account) {
      const who = adminActor(account.id, from.ip);
      await deps.audit.record(who, { action: 'admin.sign_in_failed', detail: { step, failures: n } });
      if (n === policy.lockoutThreshold) await deps.audit.record(who, { action: 'admin.locked_out', detail: { minutes: Math.round(policy.lockoutMs / 60_000) } });
    }
    return n >= policy.lockoutThreshold ? 'locked' : 'invalid';
  }

  async function readPending(preAuthId: string) {
    if (!/^[A-Za-z0-9_-]{22,64}$/.test(preAuthId)) return null;
    const raw = await kv.get(adminKeys.preAuth(preAuthId));
    if (!raw) return null;
    const parsed = preAuthSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  }

  /** Checks a code against the account's secret and consumes its time step (no reuse). */
  async function checkCode(account: A.AccountRow, code: string): Promise<boolean> {
    if (!account.totp_secret_sealed) return false;
    const secret = deps.secrets.open(account.totp_secret_sealed, totpContext(account.id));
    const step = matchTotp(secret, code.replace(/\s+/g, ''), deps.now());
    if (step === null) return false;
    return A.consumeTotpStep(db, account.id, step, account.totp_enabled_at ? null : new Date(deps.now()));
  }

  return {
    async passwordStep({ email, password, from }) {
      if (await locked(email)) return { ok: false, reason: 'locked' };
      const account = await A.findAccountByEmail(db, email);
      const usable = account?.password_hash && !account.disabled_at ? account : null;
      const ok = usable ? await verifySecret(password, usable.password_hash as string) : (await verifySecret(password, await dummy()), false);
      if (!ok || !usable) return { ok: false, reason: await failed(email, usable, 'password', from) };
      const preAuthId = randomId(24);
      const enrol = !usable.totp_enabled_at;
      await kv.set(adminKeys.preAuth(preAuthId), JSON.stringify({ adminId: usable.id, enrol }), policy.preAuthMs);
      return { ok: true, preAuthId, enrol };
    },

    pending: readPending,

    async enrolment(preAuthId) {
      const p = await readPending(preAuthId);
      if (!p?.enrol) return null;
      const account = await A.findAccountById(db, p.adminId);
      if (!account || account.totp_enabled_at) return null;
      let secret: string;
      if (account.totp_secret_sealed) secret = deps.secrets.open(account.totp_secret_sealed, totpContext(account.id));
      else {
        secret = newTotpSecret();
        await A.setPendingTotp(db, account.id, deps.secrets.seal(secret, totpContext(account.id)), new Date(deps.now()));
      }
      return { email: account.email, secret, uri: totpUri(secret, account.email, deps.issuer) };
    },

    async codeStep({ preAuthId, code, from }) {
      const p = await readPending(preAuthId);
      if (!p) return { ok: false, reason: 'expired' };
      const account = await A.findAccountById(db, p.adminId);
      if (!account || account.disabled_at) return { ok: false, reason: 'expired' };
      if (await locked(account.email)) return { ok: false, reason: 'locked' };
      if (!(await checkCode(account, code))) return { ok: false, reason: await failed(account.email, account, p.enrol ? 'enrol' : 'totp', from) };
      // Single use: a second tab or a replayed form cannot open another session.
      if (!(await kv.getDel(adminKeys.preAuth(preAuthId)))) return { ok: false, reason: 'expired' };
      await kv.del(adminKeys.failures(account.email));
      const who = adminActor(account.id, from.ip);
      if (p.enrol) await deps.audit.record(who, { action: 'admin.totp_enrolled' });
      const s = await deps.sessions.create(account.id, from);
      await A.markSignedIn(db, account.id, new Date(deps.now()));
      await deps.audit.record(who, { action: 'admin.signed_in', merchantId: account.merchant_id, detail: { session: s.id.slice(0, 8), method: 'password+totp' } });
      return { ok: true, token: s.token, sessionId: s.id };
    },

    async reauth({ principal, password, code, from }) {
      const account = await A.findAccountById(db, principal.adminId);
      if (!account?.password_hash || (await locked(account.email))) return false;
      const ok = (await verifySecret(password, account.password_hash)) && (await checkCode(account, code));
      if (!ok) {
        await failed(account.email, account, 'reauth', from);
        return false;
      }
      await deps.sessions.markReauth(principal.sessionId);
      await deps.audit.record(adminActor(account.id, from.ip), { action: 'admin.reauthenticated', merchantId: account.merchant_id });
      return true;
    },
  };
}
