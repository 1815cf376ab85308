-- 007_fleet: many probers in many locations, each check done once per location, one verdict.
--
-- probers: membership. Each prober upserts its row every lease_s/3 (lighthouse.fleet); a prober
-- whose heartbeat is older than its lease is dead. Within a location every monitor is owned by
-- exactly one live prober (rendezvous hashing over the live members, computed by each prober
-- from this table, so nobody hands anything out and a join or a death moves only ~1/N).
-- Liveness is judged by the database clock (now()), never by the probers' own clocks.
--
-- subscriptions.locations / quorum: where a monitor is checked from (NULL: every location with
-- a live prober) and how many locations must agree (NULL: a majority of those locations).
--
-- location_verdicts: each location's own view of a monitor (up/down after its thresholds),
-- written by the owning prober when that view changes. monitor_verdicts: the combined verdict.
-- A prober decides it inside one transaction holding the monitor_verdicts row lock, so however
-- many probers report at once, one of them makes each change and sends its one alert.
--
-- check_history gains `location` (variant files: the primary key becomes (subscription_id,
-- time, location), because probers in two locations check a monitor on the same wall-clock
-- slots and two rows may share a start time).

CREATE TABLE probers (
  name         text PRIMARY KEY,
  location     text NOT NULL,
  lease_s      real NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  version      text,
  instance     uuid NOT NULL,  -- per process: two live rows' worth under one name is a mistake
  CONSTRAINT probers_name_format CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
  CONSTRAINT probers_location_format CHECK (location ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  CONSTRAINT probers_lease_range CHECK (lease_s >= 1 AND lease_s <= 3600)
);

ALTER TABLE subscriptions
  ADD COLUMN locations text[],
  ADD COLUMN quorum smallint,
  ADD CONSTRAINT subscriptions_locations_nonempty
    CHECK (locations IS NULL OR cardinality(locations) BETWEEN 1 AND 64),
  ADD CONSTRAINT subscriptions_quorum_range
    CHECK (quorum IS NULL OR (quorum >= 1
                              AND (locations IS NULL OR quorum <= cardinality(locations))));

CREATE TABLE location_verdicts (
  subscription_id uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
  location        text NOT NULL,
  health          text NOT NULL,
  since           timestamptz NOT NULL,  -- the check that made this view (first bad one if down)
  prober          text NOT NULL,         -- who holds this view; only live probers' views count
  error_code      varchar(50),           -- of that check, when down
  detail          text,                  -- its outcome, redacted (goes into the alert)
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (subscription_id, location),
  CONSTRAINT location_verdicts_health CHECK (health IN ('up', 'down'))
);

CREATE TABLE monitor_verdicts (
  subscription_id uuid PRIMARY KEY REFERENCES subscriptions (id) ON DELETE CASCADE,
  health          text NOT NULL DEFAULT 'unknown',
  notified        text NOT NULL DEFAULT 'unknown',  -- last state an alert went out for
  since           timestamptz,
  locations_down  text[] NOT NULL DEFAULT '{}',     -- some but not a quorum: "degraded"
  locations_up    text[] NOT NULL DEFAULT '{}',
  decided_by      text,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT monitor_verdicts_health CHECK (health IN ('unknown', 'up', 'down')),
  CONSTRAINT monitor_verdicts_notified CHECK (notified IN ('unknown', 'up', 'down'))
);
