-- Merchants and official accounts made or edited in the admin UI (issue 8): an overlay on
-- the config file (DESIGN.md: "objects made in the admin UI live beside it"). The
-- effective config is the file's items, each replaced by its overlay row when one exists,
-- plus the rows the file does not declare. `doc` holds the non-secret fields, validated
-- by the config file's own schema; `secrets_sealed` holds the secret fields as one JSON
-- object sealed with BRIDGE_SECRET_KEY (security/secret-box.ts, the row's kind and id as
-- AAD), so a database dump reveals none of them. `version` counts edits.
CREATE TABLE admin_config_items (
  kind text NOT NULL CHECK (kind IN ('merchant', 'official_account')),
  id text NOT NULL,
  doc jsonb NOT NULL,
  secrets_sealed text NOT NULL,
  version integer NOT NULL DEFAULT 1,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_by text NOT NULL,
  updated_at timestamptz NOT NULL,
  CONSTRAINT admin_config_items__kind_id PRIMARY KEY (kind, id)
);
