-- 008_compaction: old raw history packed into one row per monitor, UTC hour and location
-- (levels without native compression: vanilla and the Apache edition; the Timescale License
-- compresses chunks itself and this table stays empty there).
--
-- A raw check row costs ~230 bytes with its primary-key entry: the 24-byte tuple header, the
-- uuid and timestamp key repeated in the index, the timings JSONB. Packed, a monitor-hour's
-- checks are one tuple of parallel arrays: the key is stored once, each column is an array
-- (NULL when no check of the hour has a value), and the row is large enough for TOAST to
-- compress it (docs/benchmarks.md "Packed history"). Timings, the bulk of a raw row, become
-- integer microseconds per key (keys once per row) when every value of the hour survives
-- that exactly; otherwise the hour keeps its JSONB. Nothing is rounded: times keep their
-- microseconds, so every query, export and rollup re-computation reads back what was stored
-- (timings as equal JSON numbers: 0.0 may come back as 0).
--
-- Who packs: lighthouse.db.compaction (the maintenance job, `invoke db.compact`), one UTC day
-- per transaction, only below the rollup watermark. Readers go through lh_checks() (a time
-- range) and lh_newest_checks() (newest first, keyset paging), never check_history alone for
-- anything older than a day.

CREATE TABLE check_history_packed (
  subscription_id  uuid NOT NULL,
  hour             timestamptz NOT NULL,   -- start of the UTC hour
  location         text NOT NULL DEFAULT '',
  checks           integer NOT NULL,       -- how many checks the row holds
  offsets_us       bigint[] NOT NULL,      -- time - hour in microseconds, ascending
  statuses         text NOT NULL,          -- one letter per check: lh_status_letter()
  http_status      smallint[],
  latency_ms       integer[],
  error_code       varchar(50)[],
  error_message    text[],
  timing_keys      text[],                 -- timings as integers: the keys, sorted
  timing_us        integer[],              -- checks x keys, row-major; NULL: key absent
  timings          jsonb[],                -- timings as they were, when integers would not do
  response_snippet text[],
  cert_days_left   integer[],
  alert_triggered  integer[],              -- 1-based positions whose alert_triggered is true
  alert_sent_at    timestamptz[],
  CONSTRAINT check_history_packed_pkey PRIMARY KEY (subscription_id, hour, location),
  CONSTRAINT check_history_packed_lengths
    CHECK (cardinality(offsets_us) = checks AND char_length(statuses) = checks
           AND cardinality(timing_us) = checks * cardinality(timing_keys))
);

-- Retention deletes whole old hours.
CREATE INDEX idx_check_history_packed_hour ON check_history_packed USING brin (hour);

-- A status as one letter, and back. Spelled out rather than by enum position, so a label
-- added to check_status later cannot shift stored letters; a label without a letter here
-- gives NULL, which the lengths constraint refuses (packing stops, nothing is lost).
CREATE FUNCTION lh_status_letter(s check_status) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE s WHEN 'success' THEN 's' WHEN 'failure' THEN 'f' WHEN 'timeout' THEN 't'
                WHEN 'error' THEN 'e' END
$$;

CREATE FUNCTION lh_status_of(letter text) RETURNS check_status
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE letter WHEN 's' THEN 'success' WHEN 'f' THEN 'failure' WHEN 't' THEN 'timeout'
                     WHEN 'e' THEN 'error' END::check_status
$$;

-- Check i's timings from the integer form (NULL when it had none).
CREATE FUNCTION lh_timings_of(keys text[], us integer[], i bigint) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT jsonb_object_agg(k, trim_scale(v / 1000.0))
  FROM unnest(keys, us[(i - 1) * cardinality(keys) + 1:i * cardinality(keys)]) AS t(k, v)
  WHERE v IS NOT NULL
$$;

-- One packed row back as check_history rows (column order of check_history).
CREATE FUNCTION lh_unpack(p check_history_packed) RETURNS SETOF check_history
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT p.hour + x.o * interval '1 microsecond', p.subscription_id,
         lh_status_of(substr(p.statuses, x.i::int, 1)), x.http_status, x.latency_ms,
         x.error_code, x.error_message,
         CASE WHEN p.timing_keys IS NOT NULL THEN lh_timings_of(p.timing_keys, p.timing_us, x.i)
              ELSE x.timings END,
         x.response_snippet, x.cert_days_left,
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
-- older than the n-th raw row's hour, none older than the newest packed hours that already
-- hold n checks (counted from `checks`, without reading the arrays).
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
                    (SELECT hour FROM (
                       SELECT hour, sum(checks) OVER (ORDER BY hour DESC, location DESC) AS upto
                       FROM check_history_packed
                       WHERE subscription_id = sid
                         AND hour < coalesce(date_trunc('hour', before, 'UTC'), 'infinity')
                         AND hour >= date_trunc('hour', since, 'UTC')
                       ORDER BY hour DESC, location DESC LIMIT n) AS w
                     WHERE upto >= n ORDER BY hour DESC LIMIT 1)) AS low)
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
  -- every prober of a fleet runs maintenance: one packer at a time, and the next one's
  -- statements (each its own snapshot) see what the first one committed
  PERFORM pg_advisory_xact_lock(1279807563);  -- 'LHPK'
  CREATE TEMP TABLE lh_pack_rows ON COMMIT DROP AS
  WITH moved AS (DELETE FROM check_history WHERE time >= d AND time < e RETURNING *),
       earlier AS (DELETE FROM check_history_packed WHERE hour >= d AND hour < e RETURNING *)
  SELECT DISTINCT ON (subscription_id, location, time) *
  FROM (SELECT u.*, 0 AS pri FROM earlier AS p CROSS JOIN LATERAL lh_unpack(p::check_history_packed) AS u
        UNION ALL
        SELECT m.*, 1 FROM moved AS m) AS r
  ORDER BY subscription_id, location, time, pri;
  SELECT count(*) INTO n FROM lh_pack_rows WHERE pri = 1;
  -- Timings as integers where every value of the group is a JSON number with at most three
  -- decimals below 2^31 / 1000 and no check has a non-object or an empty object (which the
  -- integer form could not tell from none); else the group keeps its JSONB.
  CREATE TEMP TABLE lh_pack_keys ON COMMIT DROP AS
  SELECT r.subscription_id, date_trunc('hour', r.time, 'UTC') AS h, r.location,
         array_agg(DISTINCT e.k ORDER BY e.k) AS keys,
         bool_and(CASE WHEN jsonb_typeof(e.v) = 'number'
                       THEN (e.v::numeric * 1000) % 1 = 0
                            AND abs(e.v::numeric * 1000) < 2147483648
                       ELSE false END) AS ok
  FROM lh_pack_rows AS r
  CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(r.timings) = 'object'
                                     THEN r.timings END) AS e(k, v)
  GROUP BY 1, 2, 3;
  UPDATE lh_pack_keys AS k SET ok = false
  FROM lh_pack_rows AS r
  WHERE (r.subscription_id, date_trunc('hour', r.time, 'UTC'), r.location)
        = (k.subscription_id, k.h, k.location)
    AND r.timings IS NOT NULL AND (jsonb_typeof(r.timings) <> 'object' OR r.timings = '{}');
  INSERT INTO check_history_packed
  SELECT r.subscription_id, r.h, r.location, count(*),
         array_agg((extract(epoch FROM r.time - r.h) * 1000000)::bigint ORDER BY r.time),
         string_agg(lh_status_letter(r.status), '' ORDER BY r.time),
         CASE WHEN count(r.http_status) > 0 THEN array_agg(r.http_status ORDER BY r.time) END,
         CASE WHEN count(r.latency_ms) > 0 THEN array_agg(r.latency_ms ORDER BY r.time) END,
         CASE WHEN count(r.error_code) > 0 THEN array_agg(r.error_code ORDER BY r.time) END,
         CASE WHEN count(r.error_message) > 0
              THEN array_agg(r.error_message ORDER BY r.time) END,
         CASE WHEN k.ok THEN k.keys END,
         -- checks x keys, flattened; FILTER, not only CASE: the aggregate runs either way,
         -- and a group without keys would feed it empty arrays
         CASE WHEN k.ok THEN ARRAY(SELECT unnest(array_agg(
           ARRAY(SELECT ((r.timings ->> q.key)::numeric * 1000)::integer
                 FROM unnest(k.keys) WITH ORDINALITY AS q(key, o) ORDER BY q.o)
           ORDER BY r.time) FILTER (WHERE k.ok))) END,
         CASE WHEN NOT coalesce(k.ok, false) AND count(r.timings) > 0
              THEN array_agg(r.timings ORDER BY r.time) END,
         CASE WHEN count(r.response_snippet) > 0
              THEN array_agg(r.response_snippet ORDER BY r.time) END,
         CASE WHEN count(r.cert_days_left) > 0
              THEN array_agg(r.cert_days_left ORDER BY r.time) END,
         NULL, -- alert_triggered: filled below (positions need the order first)
         CASE WHEN count(r.alert_sent_at) > 0 THEN array_agg(r.alert_sent_at ORDER BY r.time) END
  FROM (SELECT *, date_trunc('hour', time, 'UTC') AS h FROM lh_pack_rows) AS r
  LEFT JOIN lh_pack_keys AS k
    ON (k.subscription_id, k.h, k.location) = (r.subscription_id, r.h, r.location)
  GROUP BY r.subscription_id, r.h, r.location, k.ok, k.keys;
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
  DROP TABLE lh_pack_rows, lh_pack_keys;
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
