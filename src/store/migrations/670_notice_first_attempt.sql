-- When the first call to WeChat for a delivery started (issue 7: "enqueue → first attempt"
-- p99 ≤ 250 ms is measured as first_attempt_at - notices.created_at). Written with the
-- attempt's outcome in the same batched UPDATE, never overwritten by later attempts;
-- `claimed_at` is not it (it moves with every claim and precedes the limiter and the cap).
ALTER TABLE notice_deliveries ADD COLUMN first_attempt_at timestamptz;
