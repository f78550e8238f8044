-- Notices outbox (DESIGN.md "Merchant API"; SECURITY.md D2, D5; issue 7). Modelled on
-- kratos' courier: a request row, one delivery row per recipient written in the same
-- transaction, claimed by workers with FOR UPDATE SKIP LOCKED leases.
--
-- Delivery status: queued → sending (leased) → sent (template accepted, waiting for
-- TEMPLATESENDJOBFINISH) → delivered | failed; a customer-service message goes straight to
-- delivered. `unknown` is an ambiguous customer-service outcome, never retried blindly.

CREATE TABLE notices (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  merchant_id text NOT NULL,
  client_id text NOT NULL,
  -- The merchant's Idempotency-Key and a hash of the validated request: the same key with
  -- another body is a conflict (409), the same key and body replays the stored answer.
  idempotency_key text NOT NULL,
  request_hash text NOT NULL,
  recipient jsonb NOT NULL,
  template text,
  channel text NOT NULL CHECK (channel IN ('auto', 'template', 'customer-service')),
  data jsonb NOT NULL DEFAULT '{}',
  url text,
  text text,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT notices__merchant_id_idempotency_key UNIQUE (merchant_id, idempotency_key)
);

CREATE TABLE notice_deliveries (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  notice_id uuid NOT NULL REFERENCES notices (id),
  merchant_id text NOT NULL,
  identity_id uuid NOT NULL REFERENCES identities (id),
  binding_id uuid REFERENCES bindings (id),
  account_id text,
  app_id text NOT NULL,
  openid text NOT NULL,
  status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'failed', 'unknown')),
  -- While sending: 'customer-service' is written BEFORE that send, so a lease that expires
  -- (killed worker) is known to be ambiguous. Afterwards: the channel that was used.
  channel text CHECK (channel IN ('template', 'customer-service')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL,
  lease_id uuid,
  lease_until timestamptz,
  claimed_at timestamptz,
  -- Start of the first template send whose outcome is unknown: a retry with the same
  -- client_msg_id is de-duplicated by WeChat only within 10 minutes of it (§4.1).
  ambiguous_since timestamptz,
  -- Template msgid, an int64 kept as text (it exceeds 2^53).
  wx_msgid text,
  errcode integer,
  error text,
  sent_at timestamptz,
  finished_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT notice_deliveries__notice_id_identity_id UNIQUE (notice_id, identity_id)
);
CREATE INDEX notice_deliveries__next_attempt_at ON notice_deliveries (next_attempt_at) WHERE status = 'queued';
CREATE INDEX notice_deliveries__lease_until ON notice_deliveries (lease_until) WHERE status = 'sending';
CREATE INDEX notice_deliveries__app_id_wx_msgid ON notice_deliveries (app_id, wx_msgid) WHERE wx_msgid IS NOT NULL;

-- TEMPLATESENDJOBFINISH reports that arrived before their send was recorded (the push can
-- beat the worker's write); workers apply them once the msgid is known.
CREATE TABLE notice_template_reports (
  app_id text NOT NULL,
  msg_id text NOT NULL,
  status text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT notice_template_reports__pkey PRIMARY KEY (app_id, msg_id)
);
