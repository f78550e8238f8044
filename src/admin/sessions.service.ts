/**
 * Server-side admin sessions (ASVS V7): a 256-bit random token in the cookie, its hash
 * in Postgres; idle and absolute timeouts checked on every request (7.3.1, 7.3.2); a new
 * token at each sign-in (7.2.4); sign-out and admin revocation end it on the server
 * (7.4.1, 7.4.5). The account is re-read with the session on every request, so a role
 * change, a new merchant scope or a disabled account applies at once (8.3.2).
 */
import { createHash } from 'node:crypto';
import type { Db } from '../store/db.ts';
import { randomId } from '../security/secrets.ts';
import { findAccountById, type AccountRow } from './accounts.queries.ts';
import type { Principal } from './policy.ts';
import * as S from './sessions.queries.ts';
import type { AdminPolicy } from './settings.ts';

export interface LiveSession {
  id: string;
  adminId: string;
  email: string | undefined;
  createdAt: Date;
  lastSeenAt: Date;
  /** The earlier of the idle and the absolute limit. */
  endsAt: Date;
  ip: string | null;
  userAgent: string | null;
}

export interface ResolvedSession {
  principal: Principal;
  account: AccountRow;
  session: S.SessionRow;
  /** The last password + TOTP check is recent enough for a sensitive action. */
  recentlyAuthenticated: boolean;
}

export interface SessionsService {
  create(adminId: string, from: { ip: string | null; userAgent: string | null; method?: 'password+totp' | 'sso' }): Promise<{ token: string; id: string }>;
  /** The session behind a cookie token, or null when unknown, revoked, idle too long, expired or the account is disabled. */
  resolve(token: string | undefined): Promise<ResolvedSession | null>;
  markReauth(sessionId: string): Promise<void>;
  revoke(p: { id: string; by: string; adminId?: string }): Promise<S.SessionRow | null>;
  revokeAll(p: { adminId: string; by: string; exceptId?: string }): Promise<number>;
  list(p: { adminId?: string }): Promise<LiveSession[]>;
}

const hashToken = (token: string) => createHash('sha256').update(token).digest('base64url');
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

export function createSessionsService(deps: { db: Db; now: () => number; policy: AdminPolicy }): SessionsService {
  const { db, policy } = deps;
  const at = () => new Date(deps.now());
  const endsAt = (s: S.SessionRow) => new Date(Math.min(s.last_seen_at.getTime() + policy.idleMs, s.expires_at.getTime()));

  return {
    async create(adminId, from) {
      const token = randomId(32);
      const now = at();
      const id = await S.insertSession(db, {
        tokenHash: hashToken(token),
        adminId,
        at: now,
        expiresAt: new Date(now.getTime() + policy.absoluteMs),
        ip: from.ip,
        userAgent: from.userAgent?.slice(0, 300) ?? null,
        method: from.method ?? 'password+totp',
      });
      return { token, id };
    },

    async resolve(token) {
      if (!token || !TOKEN_RE.test(token)) return null;
      const s = await S.findSessionByTokenHash(db, hashToken(token));
      const now = deps.now();
      if (!s || s.revoked_at || endsAt(s).getTime() <= now) return null;
      const account = await findAccountById(db, s.admin_id);
      if (!account || account.disabled_at) return null;
      if (now - s.last_seen_at.getTime() >= policy.touchEveryMs) await S.touchSession(db, s.id, new Date(now));
      return {
        principal: { adminId: account.id, email: account.email, role: account.role, merchantId: account.merchant_id, sessionId: s.id },
        account,
        session: s,
        recentlyAuthenticated: now - s.reauth_at.getTime() < policy.reauthMs,
      };
    },

    markReauth: (sessionId) => S.markReauth(db, sessionId, at()),
    revoke: (p) => S.revokeSession(db, { ...p, at: at() }),
    revokeAll: (p) => S.revokeAllSessions(db, { ...p, at: at() }),

    async list(p) {
      const rows = await S.listLiveSessions(db, { at: at(), adminId: p.adminId });
      const now = deps.now();
      return rows
        .filter((s) => endsAt(s).getTime() > now)
        .map((s) => ({
          id: s.id,
          adminId: s.admin_id,
          email: s.email,
          createdAt: s.created_at,
          lastSeenAt: s.last_seen_at,
          endsAt: endsAt(s),
          ip: s.ip,
          userAgent: s.user_agent,
        }));
    },
  };
}
