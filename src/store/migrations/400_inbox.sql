-- Inbox (WeChat push): the Postgres stand-in for push de-duplication when Redis is down
-- (SECURITY.md D1 "Pushes from WeChat"), and the resumable follower sync.

-- A push claimed while the Kv was unavailable. The primary key is the de-duplication
-- key (MsgId, MsgID, or FromUserName+CreateTime+Event, digested), so a retry that lands
-- on any instance finds the claim. Rows are pruned after a day by the inbox worker.
CREATE TABLE inbox_claims (
  app_id text NOT NULL,
  dedupe_key text NOT NULL,
  state text NOT NULL CHECK (state IN ('pending', 'done')),
  -- The passive reply that was sent (JSON), null for `success`.
  reply jsonb,
  started_at bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT inbox_claims__pkey PRIMARY KEY (app_id, dedupe_key)
);
CREATE INDEX inbox_claims__created_at ON inbox_claims (created_at);

-- One row per official account: where the follower sync stands. A run in progress has
-- run_started_at set; after a crash the next run resumes from page_cursor (the
-- next_openid that fetched the current page) after done_through (the last openid of that
-- page already written), so no page is fetched twice and no follower is skipped.
CREATE TABLE follower_syncs (
  app_id text PRIMARY KEY,
  run_started_at timestamptz,
  page_cursor text NOT NULL DEFAULT '',
  done_through text,
  page_offset integer NOT NULL DEFAULT 0,
  synced integer NOT NULL DEFAULT 0,
  total integer,
  last_finished_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- When the follower sync last saw this identity in the follower list; followers not seen
-- by a finished run have unfollowed. Written only by the inbox feature.
ALTER TABLE identities ADD COLUMN follower_seen_at timestamptz;

-- Tag-targeted notices select followers by tag (`tags && …`, tags.service.ts).
CREATE INDEX identities__tags ON identities USING gin (tags);
