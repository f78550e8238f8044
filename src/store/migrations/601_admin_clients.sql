-- OAuth clients made in the admin UI (issue 8), beside those of the config file
-- (DESIGN.md: "objects made in the admin UI live beside it"). Only a scrypt hash of the
-- secret is kept; the secret is shown once, when it is made. The oauth client registry
-- reads this table (oauth/clients.ts TODO(#admin)); client ids never repeat a config one.
CREATE TABLE admin_clients (
  client_id text PRIMARY KEY,
  merchant_id text NOT NULL,
  secret_hash text NOT NULL,
  grant_types text[] NOT NULL,
  redirect_uris text[] NOT NULL DEFAULT '{}',
  scopes text[] NOT NULL DEFAULT '{}',
  access_token_ttl integer NOT NULL DEFAULT 600,
  disabled_at timestamptz,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  secret_rotated_at timestamptz NOT NULL
);
CREATE INDEX admin_clients__merchant_id ON admin_clients (merchant_id);
