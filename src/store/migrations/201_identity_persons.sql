-- Linking, unionid reconciliation (issue 4): identities of one person across official
-- accounts (and the Open Platform website app) share a unionid. They are reconciled by a
-- person id, never by re-keying an identity: (app_id, openid) stays the key, and a
-- unionid that appears later only joins the identity to the person that already has it.
ALTER TABLE identities ADD COLUMN person_id uuid;
UPDATE identities SET person_id = id WHERE person_id IS NULL;
ALTER TABLE identities ALTER COLUMN person_id SET NOT NULL;
ALTER TABLE identities ALTER COLUMN person_id SET DEFAULT gen_random_uuid();
CREATE INDEX identities__person_id ON identities (person_id);

-- Which WeChat scopes the profile columns came from, and when the identity last came
-- through web authorization (profile fields are stored only when snsapi_userinfo was granted).
ALTER TABLE identities ADD COLUMN last_login_at timestamptz;

-- The merchant's label of the proof (e.g. which verify-api step set or IdP) is kept in the
-- audit log; bindings only need to find a user's links quickly.
CREATE INDEX bindings__merchant_id_identity_id ON bindings (merchant_id, identity_id) WHERE status = 'active';
