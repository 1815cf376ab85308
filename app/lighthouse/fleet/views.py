"""What the status page, the monitor page, badges and the API show of a fleet (read side).

A monitor checked from several locations has the combined verdict of monitor_verdicts: up,
down, or "degraded" (up, but some locations see it down). Only verdicts backed by a live
prober's view are shown; a monitor that went back to one location, or whose probers are all
gone, is judged by the serving prober's state machine or its last check as before.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from lighthouse.fleet.membership import live

_LIVE_VIEW = f"""
  SELECT 1 FROM location_verdicts v
  JOIN probers p ON p.name = v.prober AND {live("p")}
  WHERE v.subscription_id = mv.subscription_id
"""
STATES_SQL = f"""
SELECT subscription_id::text,
       CASE WHEN health = 'down' THEN 'down'
            WHEN cardinality(locations_down) > 0 THEN 'degraded'
            ELSE health END
FROM monitor_verdicts mv
WHERE health <> 'unknown' AND EXISTS ({_LIVE_VIEW})
"""
LOCATIONS_SQL = """
SELECT c.location, count(*), count(*) FILTER (WHERE c.status = 'success'),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY c.latency_ms),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY c.latency_ms),
       max(c.time), v.health, v.since
FROM lh_checks(now() - interval '24 hours', 'infinity') c
LEFT JOIN location_verdicts v ON v.subscription_id = c.subscription_id
                             AND v.location = c.location
WHERE c.subscription_id = %s AND c.location <> ''
GROUP BY c.location, v.health, v.since
ORDER BY c.location
"""


def states(conn: psycopg.Connection) -> dict[str, str]:
    """Combined verdicts by monitor id (str): up | down | degraded."""
    return dict(conn.execute(STATES_SQL).fetchall())


def locations(conn: psycopg.Connection, monitor_id: uuid.UUID) -> list[dict[str, Any]]:
    """Per location over the last 24 hours: its view, checks, uptime and latency p50/p95."""
    out = []
    for loc, total, ok, p50, p95, last, health, since in conn.execute(
            LOCATIONS_SQL, (monitor_id,)).fetchall():
        out.append({"location": loc, "state": health or "unknown",
                    "since": since, "checks_24h": total,
                    "uptime_pct_24h": round(100.0 * ok / total, 4) if total else None,
                    "latency_ms_24h": {"p50": None if p50 is None else round(p50, 1),
                                       "p95": None if p95 is None else round(p95, 1)},
                    "last_check": last})
    return out


MEMBERS_SQL = f"""
SELECT name, location, {live()},
       extract(epoch FROM now() - heartbeat_at)::float8, started_at, version, lease_s
FROM probers ORDER BY location, name
"""
TROUBLED_SQL = f"""
SELECT s.id, s.name, CASE WHEN mv.health = 'down' THEN 'down' ELSE 'degraded' END,
       mv.locations_down, mv.locations_up, mv.since
FROM monitor_verdicts mv JOIN subscriptions s ON s.id = mv.subscription_id
WHERE (mv.health = 'down' OR cardinality(mv.locations_down) > 0) AND EXISTS ({_LIVE_VIEW})
ORDER BY (mv.health = 'down') DESC, s.name
"""


def members(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every prober that has heartbeated (dead ones until they are forgotten)."""
    return [{"name": n, "location": loc, "live": live, "heartbeat_age_s": round(age, 1),
             "started_at": started, "version": version, "lease_s": lease}
            for n, loc, live, age, started, version, lease
            in conn.execute(MEMBERS_SQL).fetchall()]


def troubled(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Monitors the fleet sees down, or failing from some locations (degraded)."""
    return [{"id": str(i), "name": name, "state": state, "locations_down": list(down),
             "locations_up": list(up), "since": since}
            for i, name, state, down, up, since in conn.execute(TROUBLED_SQL).fetchall()]
