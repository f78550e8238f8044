-- Revoked access tokens (RFC 7009; issue 5: a revoked or replayed-code token stops working).
-- Kept in PostgreSQL, the source of truth, not in Redis: a Redis restart (no persistence)
-- must not bring revoked tokens back, and with Redis down the merchant API still authenticates
-- (SECURITY.md D1: notices are enqueued into the outbox anyway). A row lives until the token
-- would have expired; later revocations prune expired rows.
CREATE TABLE revoked_access_tokens (
  jti text PRIMARY KEY,
  expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_access_tokens_expires_at ON revoked_access_tokens (expires_at);
