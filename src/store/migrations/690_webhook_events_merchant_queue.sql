-- Each merchant's own queue of due webhook events, in order: the claim takes at most a few
-- of each merchant's next events (a per-merchant cap, so one hanging endpoint cannot starve
-- the others) and reads only those through this index, whatever the backlog.
CREATE INDEX webhook_events__merchant_queue ON webhook_events (merchant_id, next_attempt_at, id) WHERE status = 'queued';
