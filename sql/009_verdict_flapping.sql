-- 009_verdict_flapping: flap damping for the combined verdict of a monitor checked from several
-- locations, as a single location's alert state machine has it (alerting.flap_window_s,
-- alerting.flap_max_transitions). The verdict is decided by whichever prober reports, so the
-- history of its changes lives with it: more changes than the maximum within the window and
-- the alert is held back (`notified` stays behind `health`); once calm, the sweep that
-- re-decides owed verdicts sends the current state once, if it differs from the last sent.

ALTER TABLE monitor_verdicts
  ADD COLUMN transitions timestamptz[] NOT NULL DEFAULT '{}';  -- recent verdict changes
