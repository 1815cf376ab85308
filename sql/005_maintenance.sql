-- 005_maintenance: planned maintenance windows. During a window checks still run and are
-- stored, but alerts for the monitors it covers are held (the state machine keeps tracking;
-- when the window ends, the current state is sent once if it differs from the last one sent),
-- and the status page tells visitors. subscription_id NULL: the window covers every monitor.

CREATE TABLE maintenance_windows (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subscription_id uuid REFERENCES subscriptions (id) ON DELETE CASCADE,
  starts_at       timestamptz NOT NULL,
  ends_at         timestamptz NOT NULL,
  note            text NOT NULL DEFAULT '',
  created_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT maintenance_windows_ends_after_start CHECK (ends_at > starts_at),
  CONSTRAINT maintenance_windows_note_len CHECK (char_length(note) <= 2000)
);

CREATE INDEX idx_maintenance_windows_ends ON maintenance_windows (ends_at);
