-- An identity's messages and menu use, as metadata only, for the admin timeline (issue 8:
-- "a timeline of logins, links, unlinks, messages (metadata only) and notices"). Never the
-- content: the kind of push, when, and the intent it was routed to (a keyword's intent
-- name, never the text that matched it). Written after WeChat is acknowledged, pruned
-- after 90 days by the writer.
CREATE TABLE identity_activity (
  id bigserial PRIMARY KEY,
  app_id text NOT NULL,
  openid text NOT NULL,
  -- The push's kind: message.text, message.voice, event.CLICK, event.subscribe, ...
  kind text NOT NULL,
  -- The intent the push was routed to (merchant intent or bind/my_accounts/help), if any.
  intent text,
  -- The merchant whose intent it was; null when the push concerns the official account only.
  merchant_id text,
  at timestamptz NOT NULL
);
CREATE INDEX identity_activity__app_id_openid_at ON identity_activity (app_id, openid, at DESC);
CREATE INDEX identity_activity__at ON identity_activity (at);

-- The identity timeline's other sources, read per identity in time order: sign-ins to
-- merchant apps (oauth's refresh-token families) and notice deliveries.
CREATE INDEX refresh_token_families__identity_id_created_at ON refresh_token_families (identity_id, created_at);
CREATE INDEX notice_deliveries__identity_id_created_at ON notice_deliveries (identity_id, created_at);
