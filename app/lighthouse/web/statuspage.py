"""Status page data and rendering: per-monitor 90-day uptime bars and latency sparklines.

Everything is server-rendered: inline SVG from a Jinja2 template, no JavaScript. Geometry is
computed here (plain numbers) so the template stays simple and autoescaped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jinja2
import psycopg

from lighthouse import incidents, maintenance_windows
from lighthouse.db import queries
from lighthouse.models import CheckResult, Monitor
from lighthouse.redact import target_of
from lighthouse.source import LOAD_ALL_SQL, LOAD_IDS_SQL, PROBED_TYPES, monitor_from_row

BAR_W, BAR_GAP, BAR_H = 6, 2, 34
SPARK_W, SPARK_H = 180, 34
SPARK_POINTS = 60
SPARK_MIN_TOP_MS = 25

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("lighthouse.web", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    trim_blocks=True, lstrip_blocks=True,
)


def template(name: str) -> jinja2.Template:
    return _env.get_template(name)


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
    target: str  # "" unless the monitor is marked public-target (metadata.public_target)
    state: str  # up | down | unknown
    last_check: str
    uptime: str  # over the same window as the bars
    p95_ms: str
    # the bars as one SVG path per colour: 90 <rect>s with hover titles were ~13 KiB of HTML
    # a monitor (6.5 MB for 500); the day-by-day detail is on the monitor's own page
    bar_paths: list[tuple[str, str]] = field(default_factory=list)
    bad_days: int = 0  # days under 99.9% (for the accessible label)
    spark_points: str = ""  # SVG polyline points
    spark_max_ms: int = 0
    spark_last_ms: int | None = None
    # the same figures as numbers, for the JSON API
    last_check_at: str | None = None  # ISO 8601, UTC
    uptime_pct: float | None = None
    p95: float | None = None


def bars_for(days: list[queries.DayUptime]) -> list[Bar]:
    out = []
    for i, d in enumerate(days):
        pct = d.uptime_pct
        label = (f"{d.day.isoformat()}: no data" if pct is None
                 else f"{d.day.isoformat()}: {pct:.2f}% up ({d.success}/{d.total} checks)")
        out.append(Bar(i * (BAR_W + BAR_GAP), bar_color(pct), label, pct))
    return out


def bar_paths(bars: list[Bar]) -> list[tuple[str, str]]:
    """[(colour, SVG path data)]: each colour's bars as rectangles in one path."""
    by_color: dict[str, list[str]] = {}
    for b in bars:
        by_color.setdefault(b.color, []).append(f"M{b.x} 0h{BAR_W}v{BAR_H}h-{BAR_W}z")
    return [(color, "".join(parts)) for color, parts in by_color.items()]


def sparkline(latencies: list[int]) -> tuple[str, int]:
    """(polyline points, max ms) for latencies oldest first; empty when fewer than 2 points.
    The scale starts at 0 and is at least SPARK_MIN_TOP_MS tall, so 0-1 ms jitter draws as a
    flat line near the bottom instead of filling the box."""
    if len(latencies) < 2:
        return "", max(latencies, default=0)
    top = max(latencies)
    scale = max(top, SPARK_MIN_TOP_MS)
    step = SPARK_W / (len(latencies) - 1)
    pts = [f"{i * step:.1f},{SPARK_H - 2 - (v / scale) * (SPARK_H - 4):.1f}"
           for i, v in enumerate(latencies)]
    return " ".join(pts), top


ORDER = "ORDER BY lower(name), id"
INCIDENTS_SHOWN = 10


def human_duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def incident_views(conn: psycopg.Connection, since: datetime,
                   monitor_id: uuid.UUID | None = None,
                   limit: int = INCIDENTS_SHOWN) -> list[dict[str, Any]]:
    """Open incidents first, then those ended since `since`: what visitors may see (the error
    text only for public-target monitors; the error code and the operator's note always)."""
    found = incidents.recent(conn, since, monitor_id, limit)
    public = public_targets(conn, list({i.subscription_id for i in found}))
    now = datetime.now(UTC)
    return [{"id": i.id, "monitor_id": str(i.subscription_id), "monitor": i.monitor,
             "open": i.open, "started_at": iso_utc(i.started_at), "ended_at": iso_utc(i.ended_at),
             "duration_s": round(i.duration_s(now)), "duration": human_duration(i.duration_s(now)),
             "first_error_code": i.first_error_code,
             "first_error": i.first_error if i.subscription_id in public else None,
             "note": i.note} for i in found]


def maintenance_views(conn: psycopg.Connection, monitor_id: uuid.UUID | None = None
                      ) -> list[dict[str, Any]]:
    """Active and upcoming maintenance windows (all of them, or those covering one monitor)."""
    now = datetime.now(UTC)
    return [{"id": w.id, "monitor_id": str(w.subscription_id) if w.subscription_id else None,
             "monitor": w.monitor, "starts_at": iso_utc(w.starts_at),
             "ends_at": iso_utc(w.ends_at), "active": w.active(now), "note": w.note}
            for w in maintenance_windows.current_and_upcoming(conn, now)
            if monitor_id is None or w.subscription_id in (None, monitor_id)]


def iso_utc(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Page:
    """One page of the status page: its monitors, and the fleet-wide counts the banner shows."""

    views: list[MonitorView]
    total: int  # active monitors, on every page
    down: int  # of those, down now (on any page)
    number: int = 1
    per_page: int = 200
    incidents: list[dict[str, Any]] = field(default_factory=list)
    maintenance: list[dict[str, Any]] = field(default_factory=list)
    degraded: int = 0  # up, but failing from some of their locations (a fleet)

    @property
    def overall(self) -> str:
        """up | down | degraded | unknown: the banner's word (page and API)."""
        if not self.total:
            return "unknown"
        return "down" if self.down else "degraded" if self.degraded else "up"

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def first(self) -> int:
        """1-based position of this page's first monitor."""
        return (self.number - 1) * self.per_page + 1


def active_ids(conn: psycopg.Connection) -> list[uuid.UUID]:
    """Every active monitor's id, in page order."""
    params = {"types": list(PROBED_TYPES)}
    rows = conn.execute(f"SELECT id FROM ({LOAD_ALL_SQL}) AS a {ORDER}", params).fetchall()
    return [r[0] for r in rows]


def active_monitors(conn: psycopg.Connection, ids: list[uuid.UUID]) -> list[Monitor]:
    """The monitors with these ids, in page order."""
    params = {"types": list(PROBED_TYPES), "ids": ids}
    return [monitor_from_row(r) for r in
            conn.execute(f"{LOAD_IDS_SQL} {ORDER}", params).fetchall()]


PUBLIC_TARGETS_SQL = """
SELECT id FROM subscriptions WHERE id = ANY(%s) AND metadata -> 'public_target' = 'true'::jsonb
"""


def public_targets(conn: psycopg.Connection, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Monitors whose owner chose to show the target to visitors; the rest show only names
    (targets are often internal addresses a visitor has no business seeing)."""
    return {r[0] for r in conn.execute(PUBLIC_TARGETS_SQL, (ids,)).fetchall()}


def state_of(live: str | None, last: CheckResult | None) -> str:
    """up | down | degraded | unknown: the fleet's or the alert state machine's word if there
    is one, else the last check."""
    if live and live != "unknown":
        return live
    if last is None:
        return "unknown"
    return "up" if str(last.status) == "success" else "down"


def collect(conn: psycopg.Connection, days: int = 90, health: dict[str, str] | None = None,
            limit: int = 200, page: int = 1) -> Page:
    """Page `page` (1-based, `limit` monitors a page, by name) of the active monitors.

    `health`: live states from the alert state machine; monitors it does not know are judged
    by their last check. The banner's down count covers every page, not just this one. A page
    costs a fixed number of statements whatever its size (one per monitor made 200 monitors
    cost ~0.6 s).
    """
    live = health or {}
    every = active_ids(conn)
    on_page = every[(page - 1) * limit:page * limit]
    shown = set(on_page)
    # Latest checks: this page's monitors, plus any others the state machine does not know.
    latest = queries.latest_checks(conn, [
        i for i in every if i in shown or live.get(str(i), "unknown") == "unknown"])
    states = [state_of(live.get(str(i)), latest.get(i)) for i in every]
    result = Page([], total=len(every), down=states.count("down"), number=page, per_page=limit,
                  degraded=states.count("degraded"),
                  incidents=incident_views(conn, datetime.now(UTC) - timedelta(days=days)),
                  maintenance=maintenance_views(conn))
    if not on_page:
        return result
    monitors = active_monitors(conn, on_page)
    ids = [m.id for m in monitors]
    stats = queries.summary(conn, ids, timedelta(days=days), percentiles=(0.95,))
    public = public_targets(conn, ids)
    bars = queries.daily_uptime_many(conn, ids, days)
    latencies = queries.recent_latencies(conn, ids, limit=SPARK_POINTS,
                                         since=datetime.now(UTC) - timedelta(days=2))
    for m in monitors:
        s = stats.get(m.id)
        last = latest.get(m.id)
        lat = latencies.get(m.id, [])
        points, top = sparkline(lat)
        p95 = s.percentile(0.95) if s else None
        result.views.append(MonitorView(
            id=str(m.id), name=m.name, target=target_of(m) if m.id in public else "",
            state=state_of(live.get(str(m.id)), last),
            last_check=last.time.strftime("%Y-%m-%d %H:%M:%S UTC") if last else "never",
            uptime=f"{s.uptime_pct:.2f}%" if s and s.uptime_pct is not None else "-",
            p95_ms=f"{p95:.0f} ms" if p95 is not None else "-",
            bar_paths=bar_paths(bars_for(bars[m.id])),
            bad_days=sum(1 for d in bars[m.id] if d.uptime_pct is not None
                         and d.uptime_pct < 99.9),
            spark_points=points, spark_max_ms=top, spark_last_ms=lat[-1] if lat else None,
            last_check_at=iso_utc(last.time) if last else None,
            uptime_pct=round(s.uptime_pct, 4) if s and s.uptime_pct is not None else None,
            p95=round(p95, 1) if p95 is not None else None))
    return result


@dataclass(frozen=True)
class Branding:
    """What an operator configures for visitors: logo and header links (http.logo_url,
    http.links as "Text=URL")."""
    logo_url: str = ""
    links: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_config(cls, logo_url: str, links: list[str]) -> Branding:
        return cls(logo_url, tuple((t.strip(), u.strip()) for t, _, u in
                                   (link.partition("=") for link in links)))


def render(page: Page, title: str, days: int = 90,
           generated: datetime | None = None, branding: Branding | None = None) -> str:
    generated = generated or datetime.now(UTC)
    overall = page.overall
    ctx: dict[str, Any] = {
        "title": title, "page": page, "branding": branding or Branding(),
        "monitors": page.views, "days": days, "overall": overall,
        "generated": generated.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "bar_w": BAR_W, "bar_h": BAR_H, "bars_width": days * (BAR_W + BAR_GAP) - BAR_GAP,
        "spark_w": SPARK_W, "spark_h": SPARK_H,
    }
    return template("status.html.j2").render(ctx)
