/**
 * Identifier shapes of the fake WeChat. Openids and unionids are derived, not random, so
 * the same simulated user keeps the same ids across sandbox restarts (a demo database
 * that survives a restart still recognises them); `salt` separates parallel test runs
 * that share one bridge database.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function hash64(input: string): string {
  return createHash('sha256').update(input).digest('base64url');
}

/**
 * 28 characters: 'o', 5 characters that are the same for every id of one namespace (real
 * openids of one account share their first six characters), then 22 per-user characters.
 */
function scopedId(namespace: string, member: string, salt: string): string {
  return `o${hash64(`ns:${namespace}:${salt}`).slice(0, 5)}${hash64(`id:${namespace}:${member}:${salt}`).slice(0, 22)}`;
}

export const openidFor = (appId: string, userId: string, salt = ''): string => scopedId(appId, userId, salt);

export const unionidFor = (openPlatformId: string, userId: string, salt = ''): string =>
  scopedId(`union:${openPlatformId}`, userId, salt);

/** Snapshot-page identities are virtual: neither equals the user's real ids (§1.8). */
export const snapshotOpenidFor = (appId: string, userId: string, salt = ''): string =>
  scopedId(`snapshot:${appId}`, userId, salt);

export const snapshotUnionidFor = (openPlatformId: string, userId: string, salt = ''): string =>
  scopedId(`snapshot-union:${openPlatformId}`, userId, salt);

export function randomAlnum(length: number): string {
  let out = '';
  for (let i = 0; i < length; i += 1) out += ALNUM[randomInt(ALNUM.length)];
  return out;
}

/** Access tokens: long opaque strings of [A-Za-z0-9_-] (reserve >= 512 chars, §2.3). */
export function newAccessToken(): string {
  return `${randomInt(60, 99)}_${randomBytes(105).toString('base64url')}`;
}

/** What a token can look like; anything else is "malformed" (40014) rather than unknown (40001). */
export const tokenShape = /^[A-Za-z0-9_-]{16,512}$/;

/** Request id suffix of errmsg: `rid: 68aeab12-12233645-3b0f9a7c` (§0). */
export function rid(): string {
  const hex = (n: number): string => randomBytes(n).toString('hex');
  return `${hex(4)}-${hex(4)}-${hex(4)}`;
}

export function newQrTicket(): string {
  // Real tickets are base64 with '+', '/', '=' — clients must URL-encode them for showqrcode.
  return `gQ${randomBytes(60).toString('base64')}`;
}
