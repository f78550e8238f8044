-- The authorization server (DESIGN.md "Tokens"; SECURITY.md A4): signing keys and
-- refresh tokens. Access tokens and codes are not stored here: access tokens are
-- self-contained JWTs (their revocations live in Kv until they expire) and codes are
-- 60-second single-use records in Kv.

-- Signing keys rotate next → current → previous. Every row is published in the JWKS;
-- only `current` signs. The private key is sealed with BRIDGE_SECRET_KEY (AES-GCM, the
-- kid bound as context), never stored in the clear. Times come from the service's clock.
CREATE TABLE signing_keys (
  kid text PRIMARY KEY,
  alg text NOT NULL CHECK (alg IN ('ES256', 'EdDSA')),
  state text NOT NULL CHECK (state IN ('next', 'current', 'previous')),
  public_jwk jsonb NOT NULL,
  private_key_sealed text NOT NULL,
  published_at timestamptz NOT NULL,
  activated_at timestamptz,
  retired_at timestamptz,
  -- A previous key stays published until every token it signed has expired.
  remove_after timestamptz,
  updated_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX signing_keys__state_current ON signing_keys (state) WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys__state_next ON signing_keys (state) WHERE state = 'next';

-- One family per authorization (code exchange); every rotation adds a token to it, and a
-- reused token revokes the whole family (RFC 9700 §4.14.2). binding_id has no foreign key
-- on purpose: the binding's status is read through the linking service at each use, so an
-- unbinding takes effect at once whatever happens to these rows.
CREATE TABLE refresh_token_families (
  id uuid PRIMARY KEY,
  client_id text NOT NULL,
  merchant_id text NOT NULL,
  identity_id uuid NOT NULL,
  binding_id uuid NOT NULL,
  scope text NOT NULL,
  auth_time timestamptz NOT NULL,
  amr text[] NOT NULL,
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  revoke_reason text,
  created_at timestamptz NOT NULL
);
CREATE INDEX refresh_token_families__binding_id ON refresh_token_families (binding_id);

-- Only a SHA-256 of each token is kept (tokens are 256-bit random: no salt or slow hash
-- needed). access_jti lets a family revocation also revoke the access tokens it issued.
CREATE TABLE refresh_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  family_id uuid NOT NULL REFERENCES refresh_token_families (id) ON DELETE CASCADE,
  token_hash text NOT NULL,
  access_jti text NOT NULL,
  access_expires_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  used_at timestamptz,
  created_at timestamptz NOT NULL,
  CONSTRAINT refresh_tokens__token_hash UNIQUE (token_hash)
);
CREATE INDEX refresh_tokens__family_id ON refresh_tokens (family_id);
