-- The Postgres stand-in for the plaintext replay guard while Redis is down (SECURITY.md A9,
-- D1): a plaintext push's signature covers neither its body nor its `openid`, so the first
-- body seen with a signature is bound to it, and the same signature with another body is
-- refused. Rows live as long as the guard's Kv keys (10 min); the inbox worker prunes them.
CREATE TABLE inbox_replay_guards (
  app_id text NOT NULL,
  signature text NOT NULL,
  body_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT inbox_replay_guards__pkey PRIMARY KEY (app_id, signature)
);
CREATE INDEX inbox_replay_guards__created_at ON inbox_replay_guards (created_at);
