"""SVG badges (`/badge/<id>/status.svg`, `uptime.svg`, `latency.svg`) for READMEs and wikis,
and an Atom feed of incidents (`/feed.atom`).

Badges are flat two-part SVGs in the shields.io style; text widths are estimated from a
per-character table (no font files on the server), generous so text never overflows. Values
come from the same queries as the status page; badges and the feed say nothing the page does
not (no targets, no error texts).
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

import psycopg

from lighthouse import __version__
from lighthouse.db import queries
from lighthouse.web import api, statuspage

KINDS = ("status", "uptime", "latency")
GREEN, YELLOW, ORANGE, RED, GREY = "#2da44e", "#bf8700", "#f29900", "#d93025", "#6e7781"
_NARROW = set("fijlrt.,:;!|' ")
_WIDE = set("mwMW@%")


def text_width(text: str) -> int:
    """Approximate width in px of text at 11 px Verdana-like sans (shields.io's metrics)."""
    return int(sum(4 if c in _NARROW else 10 if c in _WIDE else 7 for c in text)) + 10


def svg(label: str, value: str, color: str) -> str:
    lw, vw = text_width(label), text_width(value)
    w = lw + vw
    label_e, value_e = escape(label), escape(value)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" '
            f'aria-label="{label_e}: {value_e}"><title>{label_e}: {value_e}</title>'
            f'<rect width="{lw}" height="20" fill="#555"/>'
            f'<rect x="{lw}" width="{vw}" height="20" fill="{color}"/>'
            f'<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" '
            f'font-size="11"><text x="{lw / 2:.1f}" y="14">{label_e}</text>'
            f'<text x="{lw + vw / 2:.1f}" y="14">{value_e}</text></g></svg>')


def badge(conn: psycopg.Connection, monitor_id: uuid.UUID, kind: str, days: int,
          live: dict[str, str]) -> str:
    if kind not in KINDS:
        raise api.ApiError(404, f"no badge {kind!r}; there are {', '.join(KINDS)}")
    monitors = statuspage.active_monitors(conn, [monitor_id])
    if not monitors:
        raise api.ApiError(404, f"no active monitor {monitor_id}")
    if kind == "status":
        last = queries.latest_checks(conn, [monitor_id]).get(monitor_id)
        state = statuspage.state_of(live.get(str(monitor_id)), last)
        return svg("status", state, {"up": GREEN, "down": RED, "degraded": YELLOW}.get(state, GREY))
    stats = queries.summary(conn, [monitor_id], timedelta(days=days),
                            percentiles=(0.95,)).get(monitor_id)
    if kind == "uptime":
        pct = stats.uptime_pct if stats else None
        if pct is None:
            return svg(f"uptime {days}d", "no data", GREY)
        color = GREEN if pct >= 99.9 else YELLOW if pct >= 99 else ORANGE if pct >= 95 else RED
        return svg(f"uptime {days}d", f"{pct:.2f}%", color)
    p95 = stats.percentile(0.95) if stats else None
    if p95 is None:
        return svg(f"p95 {days}d", "no data", GREY)
    color = GREEN if p95 < 300 else YELLOW if p95 < 1000 else RED
    return svg(f"p95 {days}d", f"{p95:.0f} ms", color)


ATOM = "http://www.w3.org/2005/Atom"
TAG = "tag:lighthouse.invalid,2026:"  # stable entry ids that do not depend on where it is served


def feed(conn: psycopg.Connection, title: str, base_url: str, days: int,
         limit: int = 50) -> bytes:
    """Incidents of the window as Atom entries (one per incident, updated when it ends).
    base_url: the page's public URL (alerting.status_page_url) or "" for relative links, never
    the request's Host header (a visitor controls that)."""
    ET.register_namespace("", ATOM)
    items = statuspage.incident_views(conn, datetime.now(UTC) - timedelta(days=days),
                                      limit=limit)
    root = ET.Element(f"{{{ATOM}}}feed")

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: Any) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", {k: str(v) for k, v in attrs.items()})
        if text is not None:
            el.text = text
        return el

    sub(root, "title", f"{title}: incidents")
    sub(root, "id", f"{TAG}feed")
    sub(root, "link", href=f"{base_url}/feed.atom", rel="self")
    sub(root, "link", href=f"{base_url}/")
    times = [i["ended_at"] or i["started_at"] for i in items]
    sub(root, "updated", max(times) if times else statuspage.iso_utc(datetime.now(UTC)))
    sub(root, "generator", "Lighthouse", version=__version__)
    for i in items:
        entry = sub(root, "entry")
        state = "ongoing" if i["open"] else f"resolved after {i['duration']}"
        sub(entry, "title", f"{i['monitor']} down ({state})")
        sub(entry, "id", f"{TAG}incident/{i['id']}")
        sub(entry, "link", href=f"{base_url}/monitors/{i['monitor_id']}")
        sub(entry, "published", i["started_at"])
        sub(entry, "updated", i["ended_at"] or i["started_at"])
        summary = f"{i['monitor']} went down at {i['started_at']}"
        summary += " and is still down." if i["open"] else f"; back up at {i['ended_at']}."
        if i["first_error_code"]:
            summary += f" First error: {i['first_error_code']}."
        if i["note"]:
            summary += f" Note: {i['note']}"
        sub(entry, "summary", summary)
        author = sub(entry, "author")
        sub(author, "name", "Lighthouse")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
