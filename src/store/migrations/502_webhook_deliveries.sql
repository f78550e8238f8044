-- Webhook delivery state on the outbox of migration 500 (DESIGN.md "Webhooks"; issue 7):
-- queued → processing (leased) → sent | abandoned, retried with exponential backoff for a
-- window (24 h) that starts at creation or at the last replay. Every attempt is logged.
ALTER TABLE webhook_events
  ADD COLUMN status text NOT NULL DEFAULT 'queued' CONSTRAINT webhook_events__status CHECK (status IN ('queued', 'processing', 'sent', 'abandoned')),
  ADD COLUMN attempts integer NOT NULL DEFAULT 0,
  ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN window_start timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN lease_id uuid,
  ADD COLUMN lease_until timestamptz,
  ADD COLUMN last_status integer,
  ADD COLUMN last_error text,
  ADD COLUMN sent_at timestamptz,
  ADD COLUMN abandoned_at timestamptz,
  ADD COLUMN replays integer NOT NULL DEFAULT 0,
  ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX webhook_events__next_attempt_at ON webhook_events (next_attempt_at) WHERE status = 'queued';
CREATE INDEX webhook_events__lease_until ON webhook_events (lease_until) WHERE status = 'processing';

CREATE TABLE webhook_attempts (
  id bigserial PRIMARY KEY,
  event_id uuid NOT NULL REFERENCES webhook_events (id),
  attempt integer NOT NULL,
  -- Origin and path of the endpoint only: a query string may carry a merchant's token.
  endpoint text NOT NULL,
  started_at timestamptz NOT NULL,
  duration_ms integer NOT NULL,
  status_code integer,
  error text,
  outcome text NOT NULL CHECK (outcome IN ('sent', 'retry', 'abandoned'))
);
CREATE INDEX webhook_attempts__event_id ON webhook_attempts (event_id, id);
