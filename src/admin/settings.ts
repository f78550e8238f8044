/**
 * The admin UI's timing and lockout policy. Overridable per instance so tests compress
 * time without changing the relations between the numbers. Its Kv keys live in the
 * central keyspace (src/store/keyspace.ts, `admin` section).
 */
import { keyspace } from '../store/keyspace.ts';

export interface AdminPolicy {
  /** A session unused this long ends (ASVS 7.3.1). */
  idleMs: number;
  /** A session ends this long after sign-in, used or not (ASVS 7.3.2). */
  absoluteMs: number;
  /** Sensitive actions need a password + TOTP check this recent (ASVS 7.5.1). */
  reauthMs: number;
  /** Failed sign-in steps (password or code) before the sign-in is locked... */
  lockoutThreshold: number;
  /** ...for this long, counted from the first failure of the run. */
  lockoutMs: number;
  /** Time between a correct password and the TOTP step. */
  preAuthMs: number;
  /** last_seen_at is written at most this often (one UPDATE per minute, not per request). */
  touchEveryMs: number;
}

export const defaultAdminPolicy: AdminPolicy = {
  idleMs: 30 * 60_000,
  absoluteMs: 12 * 3600_000,
  reauthMs: 10 * 60_000,
  lockoutThreshold: 5,
  lockoutMs: 15 * 60_000,
  preAuthMs: 5 * 60_000,
  touchEveryMs: 60_000,
};

/** The admin section of the central keyspace, under the name the admin services use. */
export const adminKeys = keyspace.admin;
