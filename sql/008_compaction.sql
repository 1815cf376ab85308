-- 008_compaction: old raw history packed into one row per monitor, UTC hour and location
-- (levels without native compression: vanilla and the Apache edition; the Timescale License
-- compresses chunks itself and this table stays empty there).
--
-- A raw check row costs ~230 bytes with its primary-key entry: the 24-byte tuple header, the
-- uuid and timestamp key repeated in the index, the timings JSONB. Packed, a monitor-hour's
-- checks are one tuple of parallel arrays: the key is stored once, each column is an array
-- (NULL when no check of the hour has a value), and the row is large enough for TOAST to
-- compress it (~37 bytes per check at one check a minute, bench/history_bytes.py). Nothing is
-- rounded: times keep their microseconds, timings their JSONB, so every query, export and
-- rollup re-computation reads back exactly what was stored.
--
-- Who packs: lighthouse.db.compaction (the maintenance job, `invoke db.compact`), one UTC day
-- per transaction, only below the rollup watermark. Readers go through lh_checks() (a time
-- range) and lh_newest_checks() (newest first, keyset paging), never check_history alone for
-- anything older than a day.

CREATE TABLE check_history_packed (
  subscription_id  uuid NOT NULL,
  hour             timestamptz NOT NULL,   -- start of the UTC hour
  location         text NOT NULL DEFAULT '',
  offsets_us       bigint[] NOT NULL,      -- time - hour in microseconds, ascending
  statuses         text NOT NULL,          -- one letter per check: lh_status_letter()
  http_status      smallint[],
  latency_ms       integer[],
  error_code       varchar(50)[],
  error_message    text[],
  timings          jsonb[],
  response_snippet text[],
  cert_days_left   integer[],
  alert_triggered  integer[],              -- 1-based positions whose alert_triggered is true
  alert_sent_at    timestamptz[],
  CONSTRAINT check_history_packed_pkey PRIMARY KEY (subscription_id, hour, location),
  CONSTRAINT check_history_packed_lengths CHECK (cardinality(offsets_us) = char_length(statuses))
);

-- Retention deletes whole old hours.
CREATE INDEX idx_check_history_packed_hour ON check_history_packed USING brin (hour);

-- A status as one letter ('a' = the enum's first label), and back.
CREATE FUNCTION lh_status_letter(s check_status) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT chr(96 + array_position(enum_range(NULL::check_status), s))
$$;

CREATE FUNCTION lh_status_of(letter text) RETURNS check_status
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT (enum_range(NULL::check_status))[ascii(letter) - 96]
$$;

-- One packed row back as check_history rows (column order of check_history).
CREATE FUNCTION lh_unpack(p check_history_packed) RETURNS SETOF check_history
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT p.hour + x.o * interval '1 microsecond', p.subscription_id,
         lh_status_of(substr(p.statuses, x.i::int, 1)), x.http_status, x.latency_ms,
         x.error_code, x.error_message, x.timings, x.response_snippet, x.cert_days_left,
         coalesce(x.i::int = ANY(p.alert_triggered), false), x.alert_sent_at, p.location
  FROM unnest(p.offsets_us, p.http_status, p.latency_ms, p.error_code, p.error_message,
              p.timings, p.response_snippet, p.cert_days_left, p.alert_sent_at)
       WITH ORDINALITY AS x(o, http_status, latency_ms, error_code, error_message, timings,
                            response_snippet, cert_days_left, alert_sent_at, i)
$$;

-- Every check of [lo, hi), raw or packed. Inlined by the planner, so a caller's
-- subscription_id filter reaches both primary keys.
CREATE FUNCTION lh_checks(lo timestamptz, hi timestamptz) RETURNS SETOF check_history
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT * FROM check_history WHERE time >= lo AND time < hi
  UNION ALL
  SELECT u.* FROM check_history_packed p CROSS JOIN LATERAL lh_unpack(p) AS u
  WHERE p.hour >= date_trunc('hour', lo, 'UTC') AND p.hour < hi
    AND u.time >= lo AND u.time < hi
$$;

-- One monitor's newest `n` checks in [since, before), newest first (before NULL: now on),
-- ties (two locations, one slot) by location.
-- Reads at most n raw rows, and only the packed hours that can still reach the top n: none
-- older than the n-th raw row's hour, none older than the n-th newest packed row's hour
-- (each packed row holds at least one check).
CREATE FUNCTION lh_newest_checks(sid uuid, before timestamptz, since timestamptz, n integer)
RETURNS SETOF check_history
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  WITH r AS MATERIALIZED (
    SELECT * FROM check_history
    WHERE subscription_id = sid AND time < coalesce(before, 'infinity') AND time >= since
    ORDER BY time DESC, location DESC LIMIT n),
  b AS (
    SELECT coalesce(date_trunc('hour', before, 'UTC'), 'infinity') AS top,
           greatest(date_trunc('hour', since, 'UTC'),
                    (SELECT min(time) - interval '1 hour' FROM r HAVING count(*) >= n),
                    (SELECT hour FROM check_history_packed
                     WHERE subscription_id = sid
                       AND hour < coalesce(date_trunc('hour', before, 'UTC'), 'infinity')
                       AND hour >= date_trunc('hour', since, 'UTC')
                     ORDER BY hour DESC OFFSET n - 1 LIMIT 1)) AS low)
  SELECT * FROM (
    SELECT * FROM r
    UNION ALL
    SELECT u.* FROM b, check_history_packed AS p CROSS JOIN LATERAL lh_unpack(p) AS u
    WHERE p.subscription_id = sid AND p.hour <= b.top AND p.hour >= b.low
      AND u.time < coalesce(before, 'infinity') AND u.time >= since
  ) AS c
  ORDER BY time DESC, location DESC LIMIT n  -- locations check on the same slots: ties
$$;

-- Moves the checks of [d, e) (UTC hour boundaries) from check_history into packed rows,
-- merged with packed rows already there (a late row of an hour packed before); a raw row
-- that repeats a packed one (a replayed spool) is dropped. Returns the raw rows moved.
CREATE FUNCTION lh_pack_range(d timestamptz, e timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  IF d <> date_trunc('hour', d, 'UTC') OR e <> date_trunc('hour', e, 'UTC') THEN
    RAISE EXCEPTION 'lh_pack_range: % and % must be UTC hour boundaries', d, e;
  END IF;
  CREATE TEMP TABLE lh_pack_rows ON COMMIT DROP AS
  WITH moved AS (DELETE FROM check_history WHERE time >= d AND time < e RETURNING *),
       earlier AS (DELETE FROM check_history_packed WHERE hour >= d AND hour < e RETURNING *)
  SELECT DISTINCT ON (subscription_id, location, time) *
  FROM (SELECT u.*, 0 AS pri FROM earlier AS p CROSS JOIN LATERAL lh_unpack(p::check_history_packed) AS u
        UNION ALL
        SELECT m.*, 1 FROM moved AS m) AS r
  ORDER BY subscription_id, location, time, pri;
  SELECT count(*) INTO n FROM lh_pack_rows WHERE pri = 1;
  INSERT INTO check_history_packed
  SELECT subscription_id, date_trunc('hour', time, 'UTC'), location,
         array_agg((extract(epoch FROM time - date_trunc('hour', time, 'UTC')) * 1000000)::bigint
                   ORDER BY time),
         string_agg(lh_status_letter(status), '' ORDER BY time),
         CASE WHEN count(http_status) > 0 THEN array_agg(http_status ORDER BY time) END,
         CASE WHEN count(latency_ms) > 0 THEN array_agg(latency_ms ORDER BY time) END,
         CASE WHEN count(error_code) > 0 THEN array_agg(error_code ORDER BY time) END,
         CASE WHEN count(error_message) > 0 THEN array_agg(error_message ORDER BY time) END,
         CASE WHEN count(timings) > 0 THEN array_agg(timings ORDER BY time) END,
         CASE WHEN count(response_snippet) > 0 THEN array_agg(response_snippet ORDER BY time) END,
         CASE WHEN count(cert_days_left) > 0 THEN array_agg(cert_days_left ORDER BY time) END,
         NULL, -- alert_triggered: filled below (positions need the order first)
         CASE WHEN count(alert_sent_at) > 0 THEN array_agg(alert_sent_at ORDER BY time) END
  FROM lh_pack_rows
  GROUP BY subscription_id, date_trunc('hour', time, 'UTC'), location;
  UPDATE check_history_packed p SET alert_triggered = t.positions
  FROM (SELECT subscription_id, h, location, array_agg(pos ORDER BY pos) AS positions
        FROM (SELECT subscription_id, date_trunc('hour', time, 'UTC') AS h, location,
                     alert_triggered,
                     row_number() OVER (PARTITION BY subscription_id,
                                        date_trunc('hour', time, 'UTC'), location
                                        ORDER BY time)::int AS pos
              FROM lh_pack_rows) AS o
        WHERE alert_triggered GROUP BY 1, 2, 3) AS t
  WHERE p.subscription_id = t.subscription_id AND p.hour = t.h AND p.location = t.location;
  DROP TABLE lh_pack_rows;
  RETURN n;
END $$;

-- Rollups re-computed from packed hours too (a backfill or repair over old history).
CREATE OR REPLACE FUNCTION lh_rollup_hours(d timestamptz, e timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  DELETE FROM check_rollup_hourly WHERE bucket >= d AND bucket < e;
  INSERT INTO check_rollup_hourly
  SELECT g.subscription_id, g.h, sum(g.n), sum(g.ns), sum(g.nf), sum(g.nt), sum(g.ne),
         sum(g.nl), sum(g.ls), min(g.lmin), max(g.lmax),
         lh_hist_dense(array_agg(g.k) FILTER (WHERE g.k IS NOT NULL),
                       array_agg(g.nl) FILTER (WHERE g.k IS NOT NULL))
  FROM (
    SELECT subscription_id, date_trunc('hour', time, 'UTC') AS h,
           lh_latency_bucket(latency_ms) AS k,
           count(*) AS n,
           count(*) FILTER (WHERE status = 'success') AS ns,
           count(*) FILTER (WHERE status = 'failure') AS nf,
           count(*) FILTER (WHERE status = 'timeout') AS nt,
           count(*) FILTER (WHERE status = 'error') AS ne,
           count(latency_ms) AS nl, sum(latency_ms) AS ls,
           min(latency_ms) AS lmin, max(latency_ms) AS lmax
    FROM lh_checks(d, e)
    GROUP BY 1, 2, 3
  ) AS g
  GROUP BY g.subscription_id, g.h;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
