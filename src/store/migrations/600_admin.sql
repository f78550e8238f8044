-- Admin UI (issue 8): local admin accounts and their server-side sessions.
-- No default account exists: the first admin is made by `npm run cli -- create-admin`
-- (or printed once at the first demo start). ASVS 6.3.2.

-- role: viewer < operator < admin. merchant_id set = the account sees only that
-- merchant, everywhere (ASVS 8.4.1). Passwords are scrypt hashes (security/secrets.ts);
-- the TOTP secret is sealed with BRIDGE_SECRET_KEY and only enabled once a code proved
-- the authenticator has it. totp_last_step refuses a code's reuse within its window.
CREATE TABLE admin_accounts (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email text NOT NULL,
  role text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  merchant_id text,
  password_hash text,
  must_change_password boolean NOT NULL DEFAULT true,
  totp_secret_sealed text,
  totp_enabled_at timestamptz,
  totp_last_step bigint,
  disabled_at timestamptz,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  last_sign_in_at timestamptz,
  CONSTRAINT admin_accounts__email UNIQUE (email)
);

-- Sessions live here rather than in Kv so they can be listed and revoked per account
-- (ASVS 7.4.5); only a SHA-256 of the cookie token is kept. Idle and absolute limits are
-- checked on every request (ASVS 7.3.1/7.3.2); reauth_at gates sensitive actions (7.5.1).
CREATE TABLE admin_sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  token_hash text NOT NULL,
  admin_id uuid NOT NULL REFERENCES admin_accounts (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  reauth_at timestamptz NOT NULL,
  -- 'password+totp' or 'sso' (the company's IdP did the second factor).
  method text NOT NULL DEFAULT 'password+totp',
  ip text,
  user_agent text,
  revoked_at timestamptz,
  revoked_by text,
  CONSTRAINT admin_sessions__token_hash UNIQUE (token_hash)
);
CREATE INDEX admin_sessions__admin_id ON admin_sessions (admin_id) WHERE revoked_at IS NULL;
