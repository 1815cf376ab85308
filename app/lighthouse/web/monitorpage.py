"""A page per monitor (`/monitors/<id>`): uptime bars over the window with its dates in the
caption, a daily p50/p95 response-time chart with axes and units, certificate expiry for TLS
monitors, and recent checks with keyset paging.

The data is the JSON API's monitor document (same privacy rules: target and error texts only
for public-target monitors) plus the per-day latency percentiles; geometry is computed here so
the template stays plain SVG.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg

from lighthouse.db import queries
from lighthouse.web import api, statuspage

CHART_W, CHART_H = 900, 220
PAD_L, PAD_R, PAD_T, PAD_B = 56, 12, 12, 30


@dataclass
class Axis:
    y: float
    label: str


@dataclass
class Chart:
    p50: list[str] = field(default_factory=list)  # polyline point lists (gaps split them)
    p95: list[str] = field(default_factory=list)
    y_ticks: list[Axis] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    empty: bool = True


def nice_max(value: float) -> tuple[float, float]:
    """(axis top, tick step) for a maximum: 1/2/2.5/5 x 10^k steps, four or five ticks, from
    zero — so 0-1 ms jitter is drawn as the tiny thing it is, not stretched to full height."""
    value = max(value, 1.0)
    for exp in range(int(math.floor(math.log10(value))) - 1, 12):
        for mult in (1, 2, 2.5, 5):
            step = mult * 10 ** exp
            if step * 5 >= value:
                return step * math.ceil(value / step), step
    return value, value / 4


def chart(days: list[queries.DayLatency]) -> Chart:
    out = Chart()
    values = [v for d in days for v in (d.p50_ms, d.p95_ms) if v is not None]
    if not values or len(days) < 2:
        return out
    out.empty = False
    top, step = nice_max(max(values))
    w, h = CHART_W - PAD_L - PAD_R, CHART_H - PAD_T - PAD_B

    def x(i: int) -> float:
        return PAD_L + i * w / (len(days) - 1)

    def y(ms: float) -> float:
        return PAD_T + h - ms / top * h

    for attr, lines in (("p50_ms", out.p50), ("p95_ms", out.p95)):
        run: list[str] = []
        for i, d in enumerate(days):
            v = getattr(d, attr)
            if v is None:
                if len(run) > 1:
                    lines.append(" ".join(run))
                run = []
                continue
            run.append(f"{x(i):.1f},{y(v):.1f}")
        if len(run) > 1:
            lines.append(" ".join(run))
    n = 0
    while n * step <= top + 1e-9:
        ms = n * step
        out.y_ticks.append(Axis(y(ms), f"{ms:g} ms"))
        n += 1
    last = len(days) - 1
    for i in sorted({0, last // 2, last}):
        out.x_ticks.append((x(i), days[i].day.isoformat()))
    return out


@dataclass
class MonitorPage:
    doc: dict[str, Any]
    bars: list[statuspage.Bar]
    chart: Chart
    first_day: date
    last_day: date
    cert_days_left: int | None


def collect(conn: psycopg.Connection, monitor_id: uuid.UUID, days: int, live: dict[str, str],
            before: Any, limit: int) -> MonitorPage:
    data = api.monitor_data(conn, monitor_id, days, live, before, limit)
    latency = queries.daily_latency(conn, monitor_id, days)
    return MonitorPage(doc=data.doc, bars=statuspage.bars_for(data.days), chart=chart(latency),
                       first_day=data.days[0].day, last_day=data.days[-1].day,
                       cert_days_left=data.last.cert_days_left if data.last else None)


def render(page: MonitorPage, title: str, days: int) -> str:
    ctx = {"title": title, "m": page.doc, "page": page, "days": days,
           "bar_w": statuspage.BAR_W, "bar_h": statuspage.BAR_H,
           "bars_width": days * (statuspage.BAR_W + statuspage.BAR_GAP) - statuspage.BAR_GAP,
           "chart_w": CHART_W, "chart_h": CHART_H, "pad_l": PAD_L, "pad_r": PAD_R,
           "pad_t": PAD_T, "pad_b": PAD_B}
    return statuspage.template("monitor.html.j2").render(ctx)
