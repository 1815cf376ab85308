-- 004_incidents: one row per outage of a monitor, as the alert state machine decided it
-- (down after failure_threshold bad checks, up again after success_threshold good ones).
--
-- Written by the prober on each state change (not derived from alert_history, which holds one
-- row per delivery attempt per channel, and nothing for a monitor without channels). At most
-- one open incident per monitor (partial unique index): several probers, or a prober restarted
-- in the middle of an outage, cannot open a second one, and "up" closes whatever is open.
-- Operators annotate incidents (`lighthouse incident note`); the status page lists them.

CREATE TABLE incidents (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subscription_id  uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
  started_at       timestamptz NOT NULL,  -- the first failing check of the outage
  ended_at         timestamptz,           -- the check that completed the recovery; NULL: open
  first_error_code varchar(50),
  first_error      text,                  -- that check's error message (may quote the target)
  note             text,
  note_updated_at  timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT incidents_ends_after_start CHECK (ended_at IS NULL OR ended_at >= started_at),
  CONSTRAINT incidents_note_len CHECK (char_length(note) <= 2000)
);

CREATE UNIQUE INDEX incidents_one_open_per_monitor ON incidents (subscription_id)
  WHERE ended_at IS NULL;
CREATE INDEX idx_incidents_subscription_started ON incidents (subscription_id, started_at DESC);
CREATE INDEX idx_incidents_started ON incidents (started_at DESC);
