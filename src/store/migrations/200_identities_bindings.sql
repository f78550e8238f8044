-- Linking: WeChat identities, pairwise subjects, bindings to merchant accounts,
-- binding codes, and the hash-chained audit log. (STYLE.md rule 6; DESIGN.md "Linking")

-- A WeChat identity is unique on (app_id, openid). unionid is its own nullable column,
-- filled when it appears, never the key (it can appear later and would re-key the user).
CREATE TABLE identities (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  app_id text NOT NULL,
  openid text NOT NULL,
  unionid text,
  nickname text,
  avatar_url text,
  profile_updated_at timestamptz,
  subscribed boolean,
  subscribed_at timestamptz,
  unsubscribed_at timestamptz,
  last_interaction_at timestamptz,
  last_location jsonb,
  tags text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT identities__app_id_openid UNIQUE (app_id, openid)
);
CREATE INDEX identities__unionid ON identities (unionid) WHERE unionid IS NOT NULL;

-- Our own opaque pairwise subject per (merchant, identity): stable, different across
-- merchants, not derived from unionid (DESIGN.md "Tokens").
CREATE TABLE subjects (
  merchant_id text NOT NULL,
  identity_id uuid NOT NULL REFERENCES identities (id),
  sub text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT subjects__pkey PRIMARY KEY (merchant_id, identity_id),
  CONSTRAINT subjects__sub UNIQUE (sub)
);

-- Bindings join identities to merchant accounts, many to many, each a record with a
-- status and history. `exclusive` is copied from the merchant's policy at creation so a
-- partial unique index can enforce it under concurrency.
CREATE TABLE bindings (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  merchant_id text NOT NULL,
  identity_id uuid NOT NULL REFERENCES identities (id),
  account_id text NOT NULL,
  account_display text,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
  is_default boolean NOT NULL DEFAULT false,
  exclusive boolean NOT NULL,
  proof text NOT NULL CHECK (proof IN ('oidc', 'verify-api', 'binding-code', 'admin', 'import')),
  proven_at timestamptz NOT NULL DEFAULT now(),
  created_by text NOT NULL,
  revoked_at timestamptz,
  revoked_by text,
  revoke_reason text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- One active link of the same account to the same user.
CREATE UNIQUE INDEX bindings__merchant_id_identity_id_account_id ON bindings (merchant_id, identity_id, account_id) WHERE status = 'active';
-- exclusive: one WeChat user per merchant account.
CREATE UNIQUE INDEX bindings__merchant_id_account_id ON bindings (merchant_id, account_id) WHERE status = 'active' AND exclusive;
-- At most one default account per user and merchant.
CREATE UNIQUE INDEX bindings__merchant_id_identity_id_default ON bindings (merchant_id, identity_id) WHERE status = 'active' AND is_default;
CREATE INDEX bindings__merchant_id_account_id_all ON bindings (merchant_id, account_id);
CREATE INDEX bindings__identity_id ON bindings (identity_id);

-- One-time binding codes made by the merchant API; only a hash of the code is kept.
CREATE TABLE binding_codes (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  code_hash text NOT NULL,
  merchant_id text NOT NULL,
  account_id text NOT NULL,
  account_display text,
  qr_scene text,
  qr_ticket text,
  expires_at timestamptz NOT NULL,
  used_at timestamptz,
  used_by uuid REFERENCES identities (id),
  binding_id uuid REFERENCES bindings (id),
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT binding_codes__code_hash UNIQUE (code_hash),
  CONSTRAINT binding_codes__qr_scene UNIQUE (qr_scene)
);

-- Append-only audit log; each row carries the hash of the one before (hash chain), so
-- an edit anywhere is detected by re-computing the chain.
CREATE TABLE audit_log (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  actor text NOT NULL,
  action text NOT NULL,
  merchant_id text,
  identity_id uuid,
  binding_id uuid,
  source text,
  detail jsonb NOT NULL DEFAULT '{}',
  prev_hash text NOT NULL,
  hash text NOT NULL
);
CREATE INDEX audit_log__merchant_id_at ON audit_log (merchant_id, at);
CREATE INDEX audit_log__identity_id ON audit_log (identity_id);
