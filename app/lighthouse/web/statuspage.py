"""Status page data and rendering: per-monitor 90-day uptime bars and latency sparklines.

Everything is server-rendered: inline SVG from a Jinja2 template, no JavaScript. Geometry is
computed here (plain numbers) so the template stays simple and autoescaped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jinja2
import psycopg

from lighthouse.db import queries
from lighthouse.models import Monitor
from lighthouse.source import LOAD_ALL_SQL, PROBED_TYPES, monitor_from_row

BAR_W, BAR_GAP, BAR_H = 6, 2, 34
SPARK_W, SPARK_H = 180, 34
SPARK_POINTS = 60

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("lighthouse.web", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    trim_blocks=True, lstrip_blocks=True,
)


def bar_color(uptime_pct: float | None) -> str:
    if uptime_pct is None:
        return "#d0d7de"  # no data
    if uptime_pct >= 99.9:
        return "#2da44e"
    if uptime_pct >= 99.0:
        return "#8fd19e"
    if uptime_pct >= 95.0:
        return "#f29900"
    return "#d93025"


@dataclass
class Bar:
    x: int
    color: str
    title: str
    uptime_pct: float | None


@dataclass
class MonitorView:
    id: str
    name: str
    target: str
    state: str  # up | down | unknown
    last_check: str
    uptime_30d: str
    p95_ms: str
    bars: list[Bar] = field(default_factory=list)
    spark_points: str = ""  # SVG polyline points
    spark_max_ms: int = 0
    spark_last_ms: int | None = None


def bars_for(days: list[queries.DayUptime]) -> list[Bar]:
    out = []
    for i, d in enumerate(days):
        pct = d.uptime_pct
        label = (f"{d.day.isoformat()}: no data" if pct is None
                 else f"{d.day.isoformat()}: {pct:.2f}% up ({d.success}/{d.total} checks)")
        out.append(Bar(i * (BAR_W + BAR_GAP), bar_color(pct), label, pct))
    return out


def sparkline(latencies: list[int]) -> tuple[str, int]:
    """(polyline points, max ms) for latencies oldest first; empty when fewer than 2 points."""
    if len(latencies) < 2:
        return "", max(latencies, default=0)
    top = max(max(latencies), 1)
    step = SPARK_W / (len(latencies) - 1)
    pts = [f"{i * step:.1f},{SPARK_H - 2 - (v / top) * (SPARK_H - 4):.1f}"
           for i, v in enumerate(latencies)]
    return " ".join(pts), top


def _target(m: Monitor) -> str:
    c = m.config
    return str(c.get("url") or f"{c.get('host', '?')}:{c.get('port', '')}")


def active_monitors(conn: psycopg.Connection, limit: int) -> tuple[list[Monitor], int]:
    """The first `limit` active monitors by name, and how many there are in all."""
    params = {"types": list(PROBED_TYPES), "limit": limit}
    rows = conn.execute(f"{LOAD_ALL_SQL} ORDER BY lower(name), id LIMIT %(limit)s",
                        params).fetchall()
    total = conn.execute(f"SELECT count(*) FROM ({LOAD_ALL_SQL}) AS a", params).fetchone()[0]
    return [monitor_from_row(r) for r in rows], total


def collect(conn: psycopg.Connection, days: int = 90, health: dict[str, str] | None = None,
            limit: int = 200) -> tuple[list[MonitorView], int]:
    """MonitorViews of the first `limit` active monitors by name, and the number of active
    monitors. `health`: live states from the alert state machine. A fixed number of
    statements whatever the page size (one per monitor made 200 monitors cost ~0.6 s)."""
    monitors, total = active_monitors(conn, limit)
    if not monitors:
        return [], total
    ids = [m.id for m in monitors]
    stats = queries.summary(conn, ids, timedelta(days=30), percentiles=(0.95,))
    latest = queries.latest_checks(conn, ids)
    bars = queries.daily_uptime_many(conn, ids, days)
    latencies = queries.recent_latencies(conn, ids, limit=SPARK_POINTS,
                                         since=datetime.now(UTC) - timedelta(days=2))
    views = []
    for m in monitors:
        s = stats.get(m.id)
        last = latest.get(m.id)
        state = (health or {}).get(str(m.id)) or "unknown"
        if state == "unknown" and last is not None:
            state = "up" if str(last.status) == "success" else "down"
        lat = latencies.get(m.id, [])
        points, top = sparkline(lat)
        p95 = s.percentile(0.95) if s else None
        views.append(MonitorView(
            id=str(m.id), name=m.name, target=_target(m), state=state,
            last_check=last.time.strftime("%Y-%m-%d %H:%M:%S UTC") if last else "never",
            uptime_30d=f"{s.uptime_pct:.2f}%" if s and s.uptime_pct is not None else "-",
            p95_ms=f"{p95:.0f} ms" if p95 is not None else "-",
            bars=bars_for(bars[m.id]),
            spark_points=points, spark_max_ms=top, spark_last_ms=lat[-1] if lat else None))
    return views, total


def render(views: list[MonitorView], title: str, days: int = 90,
           generated: datetime | None = None, total: int | None = None) -> str:
    generated = generated or datetime.now(UTC)
    overall = ("down" if any(v.state == "down" for v in views)
               else "up" if views else "unknown")
    ctx: dict[str, Any] = {
        "title": title, "monitors": views, "days": days, "overall": overall,
        "total": len(views) if total is None else total,
        "generated": generated.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "bar_w": BAR_W, "bar_h": BAR_H, "bars_width": days * (BAR_W + BAR_GAP) - BAR_GAP,
        "spark_w": SPARK_W, "spark_h": SPARK_H,
    }
    return _env.get_template("status.html.j2").render(ctx)
