-- 001_core: relational part of the schema (identical on every capability level).
--
-- Seed: shared/seeds/001 (TimescaleDB implementation guide), corrected:
--   * monitor_type gains 'tcp' and 'tls' (what the prober runs);
--   * subscriptions gain a required `name` and a target_config shape check per type;
--   * users.wallet_address is optional (an operator account has none) but validated when set;
--   * a NOTIFY trigger lets probers reload monitors without polling.
-- The migrator wraps this file in one transaction and records it in schema_migrations.

CREATE EXTENSION IF NOT EXISTS pgcrypto;  -- gen_random_uuid() before PG13; harmless after

CREATE TYPE subscription_tier AS ENUM ('free', 'basic', 'standard', 'pro', 'enterprise');
CREATE TYPE monitor_type AS ENUM (
  'http', 'tcp', 'tls', 'websocket', 'balance', 'canary', 'graphql'
);
CREATE TYPE subscription_status AS ENUM ('pending', 'active', 'paused', 'expired', 'cancelled');
CREATE TYPE alert_channel_type AS ENUM ('discord', 'telegram', 'email', 'slack', 'webhook', 'sms');
CREATE TYPE check_status AS ENUM ('success', 'failure', 'timeout', 'error');
CREATE TYPE alert_type AS ENUM (
  'downtime', 'recovery', 'high_latency', 'low_balance', 'certificate_expiry'
);
CREATE TYPE alert_severity AS ENUM ('info', 'warning', 'critical');

-- ---------------------------------------------------------------------------
-- users
-- ---------------------------------------------------------------------------
CREATE TABLE users (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  wallet_address varchar(42) UNIQUE,
  display_name   text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  last_seen_at   timestamptz NOT NULL DEFAULT now(),
  settings       jsonb NOT NULL DEFAULT '{}',
  CONSTRAINT users_wallet_address_format
    CHECK (wallet_address IS NULL OR wallet_address ~ '^0x[a-fA-F0-9]{40}$'),
  CONSTRAINT users_settings_object CHECK (jsonb_typeof(settings) = 'object')
);

-- ---------------------------------------------------------------------------
-- subscriptions (= monitors)
-- ---------------------------------------------------------------------------
CREATE TABLE subscriptions (
  id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id                uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name                   text NOT NULL,
  target_type            monitor_type NOT NULL,
  -- http: {url, method, headers, body, expected_status:[..], keyword, json_path, json_expected,
  --        max_latency_ms, follow_redirects, max_redirects, timeout_s, keepalive}
  -- tcp:  {host, port, timeout_s}     tls: {host, port, warn_days, timeout_s}
  target_config          jsonb NOT NULL,
  tier                   subscription_tier NOT NULL DEFAULT 'free',
  check_interval_seconds integer NOT NULL DEFAULT 900,
  status                 subscription_status NOT NULL DEFAULT 'pending',
  -- payment
  payment_tx_hash        varchar(66),
  payment_chain          varchar(20),
  payment_amount_usdc    bigint,            -- smallest unit (6 decimals)
  -- lifecycle
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now(),
  activated_at           timestamptz,
  expires_at             timestamptz,
  cancelled_at           timestamptz,
  metadata               jsonb NOT NULL DEFAULT '{}',
  CONSTRAINT subscriptions_name_not_blank CHECK (btrim(name) <> ''),
  CONSTRAINT subscriptions_check_interval_min CHECK (check_interval_seconds >= 60),
  CONSTRAINT subscriptions_payment_tx_format
    CHECK (payment_tx_hash IS NULL OR payment_tx_hash ~ '^0x[a-fA-F0-9]{64}$'),
  CONSTRAINT subscriptions_payment_amount_positive
    CHECK (payment_amount_usdc IS NULL OR payment_amount_usdc >= 0),
  -- Minimal shape per type; the prober validates the rest and names the bad key.
  CONSTRAINT subscriptions_target_config_shape CHECK (
    jsonb_typeof(target_config) = 'object'
    AND coalesce(CASE target_type  -- a missing key makes jsonb_typeof NULL: refuse it
      WHEN 'http' THEN jsonb_typeof(target_config -> 'url') = 'string'
      WHEN 'tcp' THEN jsonb_typeof(target_config -> 'host') = 'string'
                  AND jsonb_typeof(target_config -> 'port') = 'number'
      WHEN 'tls' THEN jsonb_typeof(target_config -> 'host') = 'string'
      ELSE true
    END, false)
  ),
  CONSTRAINT subscriptions_metadata_object CHECK (jsonb_typeof(metadata) = 'object')
);

CREATE INDEX idx_subscriptions_user ON subscriptions (user_id);
CREATE INDEX idx_subscriptions_active ON subscriptions (id) WHERE status = 'active';
CREATE INDEX idx_subscriptions_expires_at ON subscriptions (expires_at) WHERE status = 'active';

CREATE FUNCTION lh_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;

CREATE TRIGGER subscriptions_touch_updated_at
  BEFORE UPDATE ON subscriptions
  FOR EACH ROW EXECUTE FUNCTION lh_touch_updated_at();

-- Probers LISTEN on this channel and reload the changed monitor.
-- Payload: {"op": "INSERT"|"UPDATE"|"DELETE", "id": "<uuid>", "status": "<status>"}
CREATE FUNCTION lh_notify_subscription_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r subscriptions;
BEGIN
  IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
  PERFORM pg_notify('lighthouse_subscriptions',
                    json_build_object('op', TG_OP, 'id', r.id, 'status', r.status)::text);
  RETURN NULL;
END $$;

CREATE TRIGGER subscriptions_notify
  AFTER INSERT OR UPDATE OR DELETE ON subscriptions
  FOR EACH ROW EXECUTE FUNCTION lh_notify_subscription_change();

-- ---------------------------------------------------------------------------
-- alert_channels
-- ---------------------------------------------------------------------------
CREATE TABLE alert_channels (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  subscription_id uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
  channel_type    alert_channel_type NOT NULL,
  channel_config  jsonb NOT NULL,     -- {webhook_url} | {chat_id} | {email} ...; secrets by ref
  enabled         boolean NOT NULL DEFAULT true,
  min_severity    alert_severity NOT NULL DEFAULT 'warning',
  created_at      timestamptz NOT NULL DEFAULT now(),
  last_used_at    timestamptz,
  metadata        jsonb NOT NULL DEFAULT '{}',
  CONSTRAINT alert_channels_config_object CHECK (jsonb_typeof(channel_config) = 'object')
);

CREATE INDEX idx_alert_channels_subscription ON alert_channels (subscription_id) WHERE enabled;

COMMENT ON TABLE subscriptions IS 'Monitors: what to probe, how often, and the paying user';
COMMENT ON COLUMN subscriptions.target_config IS
  'JSONB config per target_type; see sql/001_core.sql for the keys';
COMMENT ON COLUMN alert_channels.channel_config IS 'JSONB config: {webhook_url, chat_id, email, ...}';
