-- 003_rollups: hourly and daily per-subscription rollups of check_history (every level).
--
-- Why our own tables rather than continuous aggregates: the Apache edition has none, vanilla
-- PostgreSQL has none, and a per-hour p95 cannot be merged into a 30-day p95. A fixed
-- log-spaced latency histogram (int[] of counts, same layout everywhere) can be added up over
-- any window. Layout: lighthouse/db/histogram.py (BOUNDS); keep lh_hist_bounds() identical.
--
-- Refresh (lh_refresh_rollups) is incremental and idempotent: it recomputes whole hours from
-- check_history between min(watermark, now - late_horizon) and the last complete hour, so
-- late rows within the horizon are re-rolled; queries read rollups below the watermark and
-- raw rows above it. It only reads check_history, so it is safe beside concurrent ingest, and
-- an advisory lock serializes concurrent refreshes.

-- Lower bounds (ms) of the histogram buckets; bucket k (1-based) = [b[k], b[k+1]).
CREATE FUNCTION lh_hist_bounds() RETURNS int[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT '{0,1,2,3,4,5,6,7,9,11,13,15,18,22,27,32,38,46,55,66,79,95,114,137,165,198,237,285,342,410,492,591,709,851,1021,1225,1470,1764,2116,2540,3048,3657,4389,5266,6320,7584,9100,10921,13105,15726,18871,22645,27174,32609,39130,46956,56348}'::int[]
$$;

-- 1-based bucket of a latency; NULL for NULL (greatest() alone would turn NULL into 1).
CREATE FUNCTION lh_latency_bucket(ms integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN ms IS NULL THEN NULL
              ELSE greatest(1, width_bucket(ms, lh_hist_bounds())) END
$$;

-- Dense histogram from sparse (bucket, count) pairs; NULL when there are none.
CREATE FUNCTION lh_hist_dense(ks integer[], ns bigint[]) RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN cardinality(ks) > 0 THEN (
    SELECT array_agg(coalesce(s.n, 0)::integer ORDER BY i)
    FROM generate_series(1, cardinality(lh_hist_bounds())) AS i
    LEFT JOIN (SELECT k, sum(n) AS n FROM unnest(ks, ns) AS u(k, n) GROUP BY k) AS s
      ON s.k = i) END
$$;

-- Element-wise sum of two histograms (strict: NULLs are skipped by the aggregate).
CREATE FUNCTION lh_hist_add(a integer[], b integer[]) RETURNS integer[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT array_agg(x + y ORDER BY o) FROM unnest(a, b) WITH ORDINALITY AS t(x, y, o)
$$;

CREATE AGGREGATE lh_hist_merge(integer[]) (
  SFUNC = lh_hist_add,
  STYPE = integer[],
  COMBINEFUNC = lh_hist_add,
  PARALLEL = SAFE
);

CREATE TABLE check_rollup_hourly (
  subscription_id uuid NOT NULL,
  bucket          timestamptz NOT NULL,   -- start of the UTC hour
  total           integer NOT NULL,
  success         integer NOT NULL,
  failure         integer NOT NULL,
  timeout         integer NOT NULL,
  error           integer NOT NULL,
  latency_count   integer NOT NULL,       -- rows with a latency
  latency_sum     bigint,
  latency_min     integer,
  latency_max     integer,
  latency_hist    integer[],              -- counts per lh_hist_bounds() bucket
  PRIMARY KEY (subscription_id, bucket)
);

CREATE TABLE check_rollup_daily (LIKE check_rollup_hourly INCLUDING ALL);
COMMENT ON COLUMN check_rollup_daily.bucket IS 'start of the UTC day';

CREATE INDEX idx_check_rollup_hourly_bucket ON check_rollup_hourly (bucket);
CREATE INDEX idx_check_rollup_daily_bucket ON check_rollup_daily (bucket);

CREATE TABLE rollup_watermarks (
  name         text PRIMARY KEY,
  rolled_until timestamptz NOT NULL,     -- hourly rollups are complete below this instant
  refreshed_at timestamptz NOT NULL DEFAULT now()
);

-- Recomputes hourly rollups for [d, e) from check_history (d, e on UTC hour boundaries).
CREATE FUNCTION lh_rollup_hours(d timestamptz, e timestamptz) RETURNS bigint
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
    FROM check_history
    WHERE time >= d AND time < e
    GROUP BY 1, 2, 3
  ) AS g
  GROUP BY g.subscription_id, g.h;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

-- SQL text that merges column `col` of a group: ARRAY[sum(col[1]), ..., sum(col[N])].
-- One C-level sum() per bucket is ~10x faster than calling lh_hist_merge once per row
-- (measured: 500 monitors x 30 days, 0.1 s against 1.1 s); lighthouse.db.queries builds the
-- same expression in Python.
CREATE FUNCTION lh_hist_sum_sql(col text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT format('CASE WHEN count(%1$s) > 0 THEN ARRAY[', col)
         || string_agg(format('sum(%s[%s])', col, i), ', ' ORDER BY i)
         || ']::integer[] END'
  FROM generate_series(1, cardinality(lh_hist_bounds())) AS i
$$;

-- Recomputes daily rollups for the UTC days [d, e) from the hourly rollups.
CREATE FUNCTION lh_rollup_days(d timestamptz, e timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  DELETE FROM check_rollup_daily WHERE bucket >= d AND bucket < e;
  EXECUTE format($q$
    INSERT INTO check_rollup_daily
    SELECT subscription_id, date_trunc('day', bucket, 'UTC'), sum(total), sum(success),
           sum(failure), sum(timeout), sum(error), sum(latency_count), sum(latency_sum),
           min(latency_min), max(latency_max), %s
    FROM check_rollup_hourly
    WHERE bucket >= $1 AND bucket < $2
    GROUP BY 1, 2 $q$, lh_hist_sum_sql('latency_hist'))
  USING d, e;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

-- One incremental refresh. Returns the new watermark and the hourly rows written.
-- late_horizon: how far back late rows are re-rolled on every run.
-- backfill: how far back the first run starts (bounded so it never scans all history).
CREATE FUNCTION lh_refresh_rollups(late_horizon interval DEFAULT '2 hours',
                                   upto timestamptz DEFAULT now(),
                                   backfill interval DEFAULT '100 days',
                                   OUT rolled_until timestamptz, OUT hourly_rows bigint)
LANGUAGE plpgsql AS $$
DECLARE
  wm    timestamptz;
  stop  timestamptz := date_trunc('hour', upto, 'UTC');
  start timestamptz;
  d     timestamptz;
  e     timestamptz;
BEGIN
  PERFORM pg_advisory_xact_lock(1279808588);  -- 'LHRL': one refresh at a time
  hourly_rows := 0;
  SELECT w.rolled_until INTO wm FROM rollup_watermarks w WHERE w.name = 'check_history';
  IF wm IS NULL THEN
    start := date_trunc('hour', stop - backfill, 'UTC');  -- empty days cost one pruned scan
  ELSE
    start := date_trunc('hour', least(wm, stop - late_horizon), 'UTC');
  END IF;
  d := start;
  WHILE d < stop LOOP  -- one UTC day per statement bounds memory and lock time
    e := least(stop, date_trunc('day', d, 'UTC') + interval '1 day');
    hourly_rows := hourly_rows + lh_rollup_hours(d, e);
    d := e;
  END LOOP;
  IF start < stop THEN
    -- up to the watermark even if `upto` lies below it: the daily row of the watermark's
    -- day must always hold exactly the hours below the watermark (queries rely on it)
    PERFORM lh_rollup_days(date_trunc('day', start, 'UTC'), greatest(stop, coalesce(wm, stop)));
  END IF;
  rolled_until := greatest(stop, coalesce(wm, stop));
  INSERT INTO rollup_watermarks AS w (name, rolled_until, refreshed_at)
  VALUES ('check_history', rolled_until, now())
  ON CONFLICT (name) DO UPDATE SET rolled_until = excluded.rolled_until,
                                   refreshed_at = excluded.refreshed_at;
END $$;
