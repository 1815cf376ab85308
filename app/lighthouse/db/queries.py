"""Dashboard and status-page queries: rollups below the watermark, raw rows above it.

A window [start, end) is split into (at most) two raw edges, two hourly stretches and one
daily stretch, so a 30-day query for one monitor reads ~30 daily rows, <= 46 hourly rows and
< 2 hours of raw checks. Percentiles come from the merged latency histogram
(lighthouse.db.histogram): within one bucket width (~20 %) of the exact value.

Every function takes an open psycopg connection; `*_async` twins take an AsyncConnection.
Subscription ids may be uuid.UUID or str.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from lighthouse.db import histogram
from lighthouse.models import CheckResult, Status

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
DEFAULT_PERCENTILES = (0.5, 0.95, 0.99)


# --------------------------------------------------------------------------- window planning
def _floor(t: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((t - epoch) // step) * step


def _ceil(t: datetime, step: timedelta) -> datetime:
    f = _floor(t, step)
    return f if f == t else f + step


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """Half-open ranges read from each source; empty ranges have start >= end."""

    daily: tuple[datetime, datetime]
    hourly: tuple[tuple[datetime, datetime], tuple[datetime, datetime]]
    raw: tuple[tuple[datetime, datetime], tuple[datetime, datetime]]


def plan_window(start: datetime, end: datetime, watermark: datetime | None) -> WindowPlan:
    """Splits [start, end) given that hourly rollups are complete below `watermark`."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    a = _ceil(start, HOUR)
    b = _floor(min(end, watermark), HOUR) if watermark else a
    if a >= b:
        return WindowPlan((end, end), ((end, end), (end, end)), ((start, end), (end, end)))
    da, db = _ceil(a, DAY), _floor(b, DAY)
    if da >= db:
        return WindowPlan((end, end), ((a, b), (end, end)), ((start, a), (b, end)))
    if b > db and watermark and b == watermark:
        # The daily row of the watermark's day covers exactly [db, watermark): one row per
        # subscription instead of up to 23 hourly ones.
        return WindowPlan((da, db + DAY), ((a, da), (end, end)), ((start, a), (b, end)))
    return WindowPlan((da, db), ((a, da), (db, b)), ((start, a), (b, end)))


# --------------------------------------------------------------------------- results
@dataclass(slots=True)
class WindowStats:
    subscription_id: uuid.UUID
    start: datetime
    end: datetime
    total: int = 0
    success: int = 0
    failure: int = 0
    timeout: int = 0
    error: int = 0
    latency_count: int = 0
    latency_sum: int = 0
    latency_min: int | None = None
    latency_max: int | None = None
    histogram: list[int] = field(default_factory=list)
    percentiles: dict[float, float | None] = field(default_factory=dict)

    @property
    def uptime_pct(self) -> float | None:
        """Share of successful checks, in percent; None without checks."""
        return 100.0 * self.success / self.total if self.total else None

    @property
    def avg_latency_ms(self) -> float | None:
        return self.latency_sum / self.latency_count if self.latency_count else None

    def percentile(self, q: float) -> float | None:
        return histogram.percentile(self.histogram, q, self.latency_min, self.latency_max)


@dataclass(frozen=True, slots=True)
class DayLatency:
    day: date
    p50_ms: float | None
    p95_ms: float | None


@dataclass(frozen=True, slots=True)
class DayUptime:
    day: date
    total: int
    success: int

    @property
    def uptime_pct(self) -> float | None:
        return 100.0 * self.success / self.total if self.total else None


# --------------------------------------------------------------------------- SQL
_COLS = ("total, success, failure, timeout, error, latency_count, latency_sum, latency_min, "
         "latency_max, latency_hist")

# Merge of a group's histograms: one C-level sum() per bucket (as lh_hist_sum_sql() in
# sql/003_rollups.sql does), ~10x faster than the lh_hist_merge aggregate over many rows.
# Rollup rows carry `latency_hist`; raw rows come pre-grouped by bucket `k` with count `kn`.
HIST_SUM = ("CASE WHEN count(latency_hist) + count(k) > 0 THEN ARRAY["
            + ", ".join(f"coalesce(sum(coalesce(latency_hist[{i}], "
                        f"CASE WHEN k = {i} THEN kn END)), 0)"
                        for i in range(1, histogram.SIZE + 1))
            + "]::bigint[] END")

_IDS = "(%(ids)s::uuid[] IS NULL OR subscription_id = ANY(%(ids)s::uuid[]))"

# Raw rows of one range, grouped by (subscription, bucket): few rows for the top aggregate.
# A window's first partial hour can lie in packed history, hence lh_checks().
_RAW = f"""
  SELECT subscription_id, count(*), count(*) FILTER (WHERE status = 'success'),
         count(*) FILTER (WHERE status = 'failure'), count(*) FILTER (WHERE status = 'timeout'),
         count(*) FILTER (WHERE status = 'error'), count(latency_ms), sum(latency_ms),
         min(latency_ms), max(latency_ms), NULL::int[], lh_latency_bucket(latency_ms),
         count(latency_ms)
  FROM lh_checks(%({{lo}})s, %({{hi}})s)
  WHERE {_IDS}
  GROUP BY subscription_id, lh_latency_bucket(latency_ms)"""

WINDOW_SQL = f"""
WITH parts AS (
  SELECT subscription_id, {_COLS}, NULL::int AS k, NULL::bigint AS kn FROM check_rollup_daily
  WHERE {_IDS} AND bucket >= %(d0)s AND bucket < %(d1)s
  UNION ALL
  SELECT subscription_id, {_COLS}, NULL, NULL FROM check_rollup_hourly
  WHERE {_IDS}
    AND ((bucket >= %(h0)s AND bucket < %(h1)s) OR (bucket >= %(h2)s AND bucket < %(h3)s))
  UNION ALL {_RAW.format(lo="r0", hi="r1")}
  UNION ALL {_RAW.format(lo="r2", hi="r3")}
)
SELECT subscription_id, sum(total)::bigint, sum(success)::bigint, sum(failure)::bigint,
       sum(timeout)::bigint, sum(error)::bigint, sum(latency_count)::bigint,
       sum(latency_sum)::bigint, min(latency_min), max(latency_max), {HIST_SUM}
FROM parts GROUP BY subscription_id
"""

# One monitor's latency histogram per UTC day (rollups before the watermark, raw after it).
DAILY_LATENCY_SQL = f"""
WITH parts AS (
  SELECT bucket AS day, latency_min, latency_max, latency_hist, NULL::int AS k,
         NULL::bigint AS kn
  FROM check_rollup_daily
  WHERE subscription_id = %(id)s AND bucket >= %(start)s AND bucket < %(split)s
  UNION ALL
  SELECT date_trunc('day', bucket, 'UTC'), latency_min, latency_max, latency_hist, NULL, NULL
  FROM check_rollup_hourly
  WHERE subscription_id = %(id)s AND bucket >= greatest(%(start)s, %(split)s) AND bucket < %(wm)s
  UNION ALL
  SELECT date_trunc('day', time, 'UTC'), min(latency_ms), max(latency_ms), NULL::int[],
         lh_latency_bucket(latency_ms), count(*)
  FROM check_history
  WHERE subscription_id = %(id)s AND time >= greatest(%(start)s, %(wm)s) AND time < %(end)s
    AND latency_ms IS NOT NULL
  GROUP BY 1, lh_latency_bucket(latency_ms)
)
SELECT (day AT TIME ZONE 'UTC')::date, min(latency_min), max(latency_max), {HIST_SUM}
FROM parts GROUP BY 1
"""

# Checks inside maintenance windows, per monitor, over a window: overlapping windows merged
# (range_agg, PostgreSQL 14+) so no check counts twice. Windows are short and rare, so this
# reads the checks of those intervals only (raw or packed, by their primary keys).
IN_MAINTENANCE_SQL = """
WITH w AS (
  SELECT s.id AS sid, range_agg(tstzrange(greatest(m.starts_at, %(start)s),
                                          least(m.ends_at, %(end)s))) AS r
  FROM unnest(%(ids)s::uuid[]) AS s(id)
  JOIN maintenance_windows m ON (m.subscription_id = s.id OR m.subscription_id IS NULL)
   AND m.ends_at > %(start)s AND m.starts_at < %(end)s
  GROUP BY s.id
)
SELECT w.sid, count(*), count(*) FILTER (WHERE c.status = 'success')
FROM w CROSS JOIN LATERAL lh_checks(lower(w.r), upper(w.r)) AS c
WHERE c.subscription_id = w.sid AND w.r @> c.time
GROUP BY w.sid
"""

WATERMARK_SQL = "SELECT rolled_until FROM rollup_watermarks WHERE name = 'check_history'"

DAILY_SQL = """
WITH days AS (
  SELECT subscription_id, bucket AS day, total, success FROM check_rollup_daily
  WHERE subscription_id = ANY(%(ids)s::uuid[]) AND bucket >= %(start)s AND bucket < %(split)s
  UNION ALL
  SELECT subscription_id, date_trunc('day', bucket, 'UTC'), total, success
  FROM check_rollup_hourly
  WHERE subscription_id = ANY(%(ids)s::uuid[]) AND bucket >= greatest(%(start)s, %(split)s)
    AND bucket < %(wm)s
  UNION ALL
  SELECT subscription_id, date_trunc('day', time, 'UTC'), 1, (status = 'success')::int
  FROM check_history
  WHERE subscription_id = ANY(%(ids)s::uuid[]) AND time >= greatest(%(start)s, %(wm)s)
    AND time < %(end)s
)
SELECT subscription_id, (day AT TIME ZONE 'UTC')::date, sum(total)::bigint, sum(success)::bigint
FROM days GROUP BY 1, 2
"""

_CHECK_COLS = ("subscription_id, time, status, latency_ms, http_status, error_code, "
               "error_message, timings, response_snippet, cert_days_left, location")

# Newest first, raw or packed (lh_newest_checks reads at most `limit` rows of each).
RECENT_SQL = f"""
SELECT {_CHECK_COLS}
FROM lh_newest_checks(%(id)s, %(before)s::timestamptz, %(since)s, %(limit)s)
ORDER BY time DESC, location DESC
"""

LATEST_SQL = f"""
SELECT {", ".join(f"c.{col.strip()}" for col in _CHECK_COLS.split(","))}
FROM unnest(%(ids)s::uuid[]) AS s(id)
CROSS JOIN LATERAL lh_newest_checks(s.id, NULL, %(since)s, 1) AS c
"""

# The newest `limit` latencies of each subscription, one statement for a whole page of
# monitors (sparklines): only two narrow columns leave the server.
RECENT_LATENCIES_SQL = """
SELECT s.id, c.time, c.latency_ms FROM unnest(%(ids)s::uuid[]) AS s(id)
CROSS JOIN LATERAL lh_newest_checks(s.id, NULL, %(since)s, %(limit)s) AS c
"""


def _uuid(i: uuid.UUID | str) -> uuid.UUID:
    return i if isinstance(i, uuid.UUID) else uuid.UUID(i)


def _ids(ids: Sequence[uuid.UUID | str] | None) -> list[uuid.UUID] | None:
    return None if ids is None else [_uuid(i) for i in ids]


def _window_params(ids, start: datetime, end: datetime, wm: datetime | None) -> dict[str, Any]:
    p = plan_window(start, end, wm)
    return {"ids": _ids(ids), "d0": p.daily[0], "d1": p.daily[1],
            "h0": p.hourly[0][0], "h1": p.hourly[0][1], "h2": p.hourly[1][0],
            "h3": p.hourly[1][1], "r0": p.raw[0][0], "r1": p.raw[0][1], "r2": p.raw[1][0],
            "r3": p.raw[1][1]}


def _stats(row, start: datetime, end: datetime, qs: Sequence[float]) -> WindowStats:
    total, success, failure, timeout, error, latency_count, latency_sum = (
        int(v or 0) for v in row[1:8])
    s = WindowStats(row[0], start, end, total, success, failure, timeout, error, latency_count,
                    latency_sum, row[8], row[9], list(row[10] or [0] * histogram.SIZE))
    s.percentiles = {q: s.percentile(q) for q in qs}
    return s


def _bounds(window: timedelta | None, start: datetime | None, end: datetime | None
            ) -> tuple[datetime, datetime]:
    end = end or datetime.now(UTC)
    if start is None:
        start = end - (window if window is not None else timedelta(days=30))
    if start >= end:
        raise ValueError(f"empty window: start {start} is not before end {end}")
    return start, end


def _check(row) -> CheckResult:
    return CheckResult(subscription_id=row[0], time=row[1], status=Status(row[2]),
                       latency_ms=row[3], http_status=row[4], error_code=row[5],
                       error_message=row[6], timings=row[7] or {}, response_snippet=row[8],
                       cert_days_left=row[9], location=row[10])


# --------------------------------------------------------------------------- sync API
def summary(conn: psycopg.Connection, subscription_ids: Sequence[uuid.UUID | str] | None = None,
            window: timedelta | None = None, *, start: datetime | None = None,
            end: datetime | None = None,
            percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> dict[uuid.UUID, WindowStats]:
    """Stats per subscription over [start, end) (default: the last 30 days).

    `subscription_ids=None` means every subscription with checks in the window; ids without
    checks are returned with zero counts."""
    start, end = _bounds(window, start, end)
    wm_row = conn.execute(WATERMARK_SQL).fetchone()
    rows = conn.execute(WINDOW_SQL, _window_params(subscription_ids, start, end,
                                                   wm_row[0] if wm_row else None)).fetchall()
    out = {r[0]: _stats(r, start, end, percentiles) for r in rows}
    for sid in _ids(subscription_ids) or ():
        out.setdefault(sid, _stats((sid, *[None] * 10), start, end, percentiles))
    return out


def subscription_stats(conn: psycopg.Connection, subscription_id: uuid.UUID | str,
                       window: timedelta | None = None, *, start: datetime | None = None,
                       end: datetime | None = None,
                       percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> WindowStats:
    """Uptime %, counts, avg/min/max and percentile latency of one subscription."""
    sid = _uuid(subscription_id)
    return summary(conn, [sid], window, start=start, end=end, percentiles=percentiles)[sid]


def _day_grid(ids: list[uuid.UUID], days: int, end: datetime | None
              ) -> tuple[date, dict[str, Any]]:
    """First day of the grid and DAILY_SQL's parameters (watermark read separately)."""
    end = (end or datetime.now(UTC)).astimezone(UTC)
    first = end.date() - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    return first, {"ids": ids, "start": start, "end": end}


def _with_watermark(params: dict[str, Any], wm_row) -> dict[str, Any]:
    wm = max(min(wm_row[0], params["end"]) if wm_row else params["start"], params["start"])
    return {**params, "wm": wm, "split": _floor(wm, DAY)}


def _days_by_id(ids: list[uuid.UUID], first: date, days: int, rows
                ) -> dict[uuid.UUID, list[DayUptime]]:
    """One entry per UTC day and id, oldest first; days without checks have total 0."""
    found = {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}
    grid = [first + timedelta(days=i) for i in range(days)]
    return {i: [DayUptime(d, *found.get((i, d), (0, 0))) for d in grid] for i in ids}


def daily_uptime(conn: psycopg.Connection, subscription_id: uuid.UUID | str, days: int = 90,
                 end: datetime | None = None) -> list[DayUptime]:
    """One entry per UTC day, oldest first, the last being today (partial); days without
    checks have total 0 (status-page bars)."""
    return next(iter(daily_uptime_many(conn, [subscription_id], days, end).values()))


def daily_uptime_many(conn: psycopg.Connection, subscription_ids: Sequence[uuid.UUID | str],
                      days: int = 90, end: datetime | None = None
                      ) -> dict[uuid.UUID, list[DayUptime]]:
    """daily_uptime for many subscriptions in one statement (a status page's worth)."""
    ids = _ids(subscription_ids) or []
    first, params = _day_grid(ids, days, end)
    params = _with_watermark(params, conn.execute(WATERMARK_SQL).fetchone())
    return _days_by_id(ids, first, days, conn.execute(DAILY_SQL, params).fetchall())


def daily_latency(conn: psycopg.Connection, subscription_id: uuid.UUID | str, days: int = 90,
                  end: datetime | None = None) -> list[DayLatency]:
    """p50/p95 latency per UTC day, oldest first (None on days without a latency), from the
    same rollups and raw tail as daily_uptime: one statement for the whole chart."""
    sid = _uuid(subscription_id)
    first, params = _day_grid([sid], days, end)
    params = _with_watermark({**params, "id": sid}, conn.execute(WATERMARK_SQL).fetchone())
    found = {r[0]: r for r in conn.execute(DAILY_LATENCY_SQL, params).fetchall()}
    out = []
    for i in range(days):
        d = first + timedelta(days=i)
        row = found.get(d)
        hist = list(row[3]) if row and row[3] else None
        out.append(DayLatency(d, *(histogram.percentile(hist, q, row[1], row[2])
                                   if row and hist else None for q in (0.5, 0.95))))
    return out


def in_maintenance(conn: psycopg.Connection, subscription_ids: Sequence[uuid.UUID | str],
                   start: datetime, end: datetime) -> dict[uuid.UUID, tuple[int, int]]:
    """(checks, successes) inside maintenance windows between start and end, per monitor
    (monitors without any are absent)."""
    rows = conn.execute(IN_MAINTENANCE_SQL, {"ids": _ids(subscription_ids), "start": start,
                                             "end": end}).fetchall()
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def uptime_excluding(stats: WindowStats, inside: tuple[int, int] | None) -> float | None:
    """Uptime % of the checks outside maintenance windows (None without any)."""
    total, success = stats.total, stats.success
    if inside:
        total, success = total - inside[0], success - inside[1]
    return 100.0 * success / total if total > 0 else None


def recent_latencies(conn: psycopg.Connection, subscription_ids: Sequence[uuid.UUID | str],
                     limit: int = 60, since: datetime | None = None
                     ) -> dict[uuid.UUID, list[int]]:
    """The latencies (ms) of each subscription's newest `limit` checks since `since` (default
    1 day), oldest first; checks without a latency (timeouts, errors) are left out."""
    ids = _ids(subscription_ids) or []
    since = since or datetime.now(UTC) - DAY
    out: dict[uuid.UUID, list[tuple[datetime, int]]] = {i: [] for i in ids}
    for sid, t, ms in conn.execute(RECENT_LATENCIES_SQL,
                                   {"ids": ids, "since": since, "limit": limit}):
        if ms is not None:
            out[sid].append((t, ms))
    return {i: [ms for _, ms in sorted(pts)] for i, pts in out.items()}


def recent_checks(conn: psycopg.Connection, subscription_id: uuid.UUID | str, limit: int = 50,
                  before: datetime | None = None,
                  since: datetime | None = None) -> list[CheckResult]:
    """Newest first. Keyset pagination: pass the last row's `time` as `before` for the next
    page. `since` bounds the scan (default 90 days) so an idle monitor stays cheap."""
    since = since or datetime.now(UTC) - timedelta(days=90)
    rows = conn.execute(RECENT_SQL, {"id": _uuid(subscription_id), "before": before,
                                     "since": since, "limit": limit}).fetchall()
    return [_check(r) for r in rows]


def latest_checks(conn: psycopg.Connection, subscription_ids: Sequence[uuid.UUID | str],
                  since: datetime | None = None) -> dict[uuid.UUID, CheckResult]:
    """The newest check of each subscription (within `since`, default 1 day)."""
    since = since or datetime.now(UTC) - DAY
    rows = conn.execute(LATEST_SQL, {"ids": _ids(subscription_ids), "since": since}).fetchall()
    return {r[0]: _check(r) for r in rows}


# --------------------------------------------------------------------------- async twins
async def summary_async(aconn: psycopg.AsyncConnection,
                        subscription_ids: Sequence[uuid.UUID | str] | None = None,
                        window: timedelta | None = None, *, start: datetime | None = None,
                        end: datetime | None = None,
                        percentiles: Sequence[float] = DEFAULT_PERCENTILES,
                        ) -> dict[uuid.UUID, WindowStats]:
    start, end = _bounds(window, start, end)
    wm_row = await (await aconn.execute(WATERMARK_SQL)).fetchone()
    cur = await aconn.execute(WINDOW_SQL, _window_params(subscription_ids, start, end,
                                                         wm_row[0] if wm_row else None))
    out = {r[0]: _stats(r, start, end, percentiles) for r in await cur.fetchall()}
    for sid in _ids(subscription_ids) or ():
        out.setdefault(sid, _stats((sid, *[None] * 10), start, end, percentiles))
    return out


async def subscription_stats_async(aconn: psycopg.AsyncConnection,
                                   subscription_id: uuid.UUID | str,
                                   window: timedelta | None = None, *,
                                   start: datetime | None = None, end: datetime | None = None,
                                   percentiles: Sequence[float] = DEFAULT_PERCENTILES,
                                   ) -> WindowStats:
    sid = _uuid(subscription_id)
    res = await summary_async(aconn, [sid], window, start=start, end=end,
                              percentiles=percentiles)
    return res[sid]


async def daily_uptime_async(aconn: psycopg.AsyncConnection, subscription_id: uuid.UUID | str,
                             days: int = 90, end: datetime | None = None) -> list[DayUptime]:
    ids = [_uuid(subscription_id)]
    first, params = _day_grid(ids, days, end)
    params = _with_watermark(params, await (await aconn.execute(WATERMARK_SQL)).fetchone())
    rows = await (await aconn.execute(DAILY_SQL, params)).fetchall()
    return _days_by_id(ids, first, days, rows)[ids[0]]


async def recent_checks_async(aconn: psycopg.AsyncConnection, subscription_id: uuid.UUID | str,
                              limit: int = 50, before: datetime | None = None,
                              since: datetime | None = None) -> list[CheckResult]:
    since = since or datetime.now(UTC) - timedelta(days=90)
    cur = await aconn.execute(RECENT_SQL, {"id": _uuid(subscription_id), "before": before,
                                           "since": since, "limit": limit})
    return [_check(r) for r in await cur.fetchall()]


async def latest_checks_async(aconn: psycopg.AsyncConnection,
                              subscription_ids: Sequence[uuid.UUID | str],
                              since: datetime | None = None) -> dict[uuid.UUID, CheckResult]:
    since = since or datetime.now(UTC) - DAY
    cur = await aconn.execute(LATEST_SQL, {"ids": _ids(subscription_ids), "since": since})
    return {r[0]: _check(r) for r in await cur.fetchall()}
