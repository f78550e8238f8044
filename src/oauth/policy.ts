/**
 * The authorization server's timing policy in one place, derived from SECURITY.md A4
 * (rotation recipe) and A5. Overridable per feature instance so tests can compress time
 * without changing the relations between the numbers.
 */
export interface OAuthPolicy {
  /** Cache-Control max-age of the JWKS and discovery documents. */
  jwksMaxAgeSeconds: number;
  /** The longest cache a verifier may keep (jose createRemoteJWKSet cacheMaxAge default: 10 min). */
  verifierCacheMaxAgeMs: number;
  /** How often every instance re-reads the keys table, so a rotation needs no restart. */
  keysPollMs: number;
  /** Clock skew allowed to verifiers when deciding that a retired key's tokens have all expired. */
  clockSkewMs: number;
  /** The longest access/ID token lifetime any client may have (config max: 3600 s). */
  maxTokenTtlSeconds: number;
  /** A refresh token lives this long after it is issued (each rotation issues a new one)... */
  refreshTokenTtlMs: number;
  /** ...but never beyond this after the original authorization (absolute family lifetime). */
  refreshFamilyMaxMs: number;
  /** The longest a private_key_jwt client assertion may live (RFC 7523 §3: short). */
  maxAssertionLifetimeSeconds: number;
}

export const defaultPolicy: OAuthPolicy = {
  jwksMaxAgeSeconds: 300,
  verifierCacheMaxAgeMs: 600_000,
  keysPollMs: 5_000,
  clockSkewMs: 60_000,
  maxTokenTtlSeconds: 3600,
  refreshTokenTtlMs: 30 * 24 * 3600_000,
  refreshFamilyMaxMs: 90 * 24 * 3600_000,
  maxAssertionLifetimeSeconds: 300,
};

/**
 * A next key must have been published this long before it may sign (A4 step 2): the JWKS
 * HTTP cache plus the verifier's own cache, so no verifier can meet its kid unknown.
 */
export const publishLeadMs = (p: OAuthPolicy): number => p.jwksMaxAgeSeconds * 1000 + p.verifierCacheMaxAgeMs;

/** A retired key stays published until every token it signed has expired (A4 step 4). */
export const retentionMs = (p: OAuthPolicy): number => p.maxTokenTtlSeconds * 1000 + p.clockSkewMs;
