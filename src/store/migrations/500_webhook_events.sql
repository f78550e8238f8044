-- Webhooks outbox (DESIGN.md "Webhooks"): an event is written in the same transaction as
-- the change that caused it; the webhook worker (notices/webhooks feature) delivers it.
CREATE TABLE webhook_events (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  merchant_id text NOT NULL,
  type text NOT NULL,
  data jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_events__merchant_id_created_at ON webhook_events (merchant_id, created_at);
