/**
 * TOTP second factor (RFC 6238 through the `otpauth` package; ASVS 6.3.3 / 4.0.3 4.3.1:
 * admin interfaces use MFA). 30-second steps, 6 digits, SHA-1 (what every authenticator
 * app accepts), one step of drift either way. A match returns its time step so the
 * caller can refuse the same code twice (RFC 6238 §5.2).
 */
import { Secret, TOTP } from 'otpauth';

const PERIOD = 30;

export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

function totp(secretBase32: string, label = 'admin', issuer = 'wxbridge'): TOTP {
  return new TOTP({ issuer, label, algorithm: 'SHA1', digits: 6, period: PERIOD, secret: Secret.fromBase32(secretBase32) });
}

/** The otpauth:// URI an authenticator app scans. */
export function totpUri(secretBase32: string, email: string, issuer: string): string {
  return totp(secretBase32, email, issuer).toString();
}

/** The time step the code belongs to, or null when it matches none within the window. */
export function matchTotp(secretBase32: string, code: string, nowMs: number): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  const delta = totp(secretBase32).validate({ token: code, timestamp: nowMs, window: 1 });
  if (delta === null) return null;
  return Math.floor(nowMs / 1000 / PERIOD) + delta;
}

/** The current code (tests and the demo only; never logged). */
export function totpCode(secretBase32: string, nowMs: number): string {
  return totp(secretBase32).generate({ timestamp: nowMs });
}
