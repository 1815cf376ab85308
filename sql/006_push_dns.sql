-- 006_push_dns: the push (heartbeat) and dns monitor types.
--
-- push: a job calls the prober's /push/<token> on each run; the monitor is down when no push
-- arrived within its check interval + grace_s. The token is a secret: target_config holds only
-- its SHA-256 (`token_sha256`), so neither the database, a dump nor the API can give it back.
-- The last push is kept here, not in a prober's memory, so any prober may receive a push and
-- any prober may check it.
-- (New enum values cannot be used inside the transaction that adds them, so nothing below
-- names 'push' or 'dns'.)

ALTER TYPE monitor_type ADD VALUE IF NOT EXISTS 'push';
ALTER TYPE monitor_type ADD VALUE IF NOT EXISTS 'dns';

CREATE TABLE push_heartbeats (
  subscription_id uuid PRIMARY KEY REFERENCES subscriptions (id) ON DELETE CASCADE,
  armed_at        timestamptz NOT NULL DEFAULT now(),  -- first checked: the clock starts here
  last_push_at    timestamptz,
  last_status     text,
  last_message    text,
  pushes          bigint NOT NULL DEFAULT 0,
  CONSTRAINT push_heartbeats_status CHECK (last_status IS NULL OR last_status IN ('up', 'down')),
  CONSTRAINT push_heartbeats_message_len CHECK (char_length(last_message) <= 500)
);

-- /push/<token> finds its monitor by the token's hash; two monitors cannot share a token.
CREATE UNIQUE INDEX idx_subscriptions_push_token
  ON subscriptions ((target_config ->> 'token_sha256'))
  WHERE target_config ? 'token_sha256';
