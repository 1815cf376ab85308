"""The public JSON API (`/api/v1/...`): what the status page shows, for machines.

Same data and the same privacy rules as the HTML page: names for everyone, targets (and check
error messages, which often quote them) only for monitors marked public-target. The OpenAPI
document below is the contract: served at /api/v1/openapi.json and fuzzed against the running
server with schemathesis in the integration tests.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import psycopg

from lighthouse import __version__
from lighthouse.db import queries
from lighthouse.fleet import views as fleet_views
from lighthouse.models import CheckResult
from lighthouse.redact import target_of
from lighthouse.web import statuspage

RECENT_DEFAULT, RECENT_MAX = 50, 200


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _one(query: str, name: str) -> str | None:
    values = parse_qs(query, keep_blank_values=True).get(name)
    return values[-1] if values else None


def parse_page(query: str) -> int:
    raw = _one(query, "page")
    if raw is None:
        return 1
    if not raw.isdigit() or int(raw) < 1:
        raise ApiError(400, "page must be a positive integer")
    return int(raw)


def parse_monitor_query(query: str) -> tuple[datetime | None, int]:
    """(before, limit) for a monitor's recent checks: keyset paging on check time."""
    before: datetime | None = None
    raw = _one(query, "before")
    if raw is not None:
        try:
            before = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(400, "before must be an ISO 8601 time with offset") from None
        if before.tzinfo is None:
            raise ApiError(400, "before must carry a UTC offset (e.g. 2026-01-02T03:04:05Z)")
    raw = _one(query, "limit")
    limit = RECENT_DEFAULT
    if raw is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= RECENT_MAX:
            raise ApiError(400, f"limit must be an integer from 1 to {RECENT_MAX}")
        limit = int(raw)
    return before, limit


def parse_monitor_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ApiError(400, "monitor id must be a UUID") from None


def _summary(view: statuspage.MonitorView) -> dict[str, Any]:
    return {"id": view.id, "name": view.name, "target": view.target or None,
            "state": view.state, "last_check": view.last_check_at,
            "uptime_pct": view.uptime_pct, "p95_ms": view.p95,
            "url": f"/api/v1/monitors/{view.id}"}


def status_document(page: statuspage.Page, title: str, days: int) -> dict[str, Any]:
    return {"title": title, "generated_at": statuspage.iso_utc(datetime.now(UTC)),
            "overall": page.overall, "window_days": days, "total": page.total,
            "down": page.down, "degraded": page.degraded,
            "page": page.number, "pages": page.pages,
            "monitors": [_summary(v) for v in page.views], "incidents": page.incidents,
            "maintenance": page.maintenance}


@dataclass(frozen=True)
class MonitorData:
    """The monitor document and what it was built from that a page also draws."""
    doc: dict[str, Any]
    days: list[queries.DayUptime]
    last: CheckResult | None


def monitor_document(conn: psycopg.Connection, monitor_id: uuid.UUID, days: int,
                     live: dict[str, str], before: datetime | None, limit: int
                     ) -> dict[str, Any]:
    return monitor_data(conn, monitor_id, days, live, before, limit).doc


def monitor_data(conn: psycopg.Connection, monitor_id: uuid.UUID, days: int,
                 live: dict[str, str], before: datetime | None, limit: int) -> MonitorData:
    monitors = statuspage.active_monitors(conn, [monitor_id])
    if not monitors:
        raise ApiError(404, f"no active monitor {monitor_id}")
    m = monitors[0]
    public = m.id in statuspage.public_targets(conn, [m.id])
    stats = queries.summary(conn, [m.id], timedelta(days=days), percentiles=(0.5, 0.95)).get(m.id)
    last = queries.latest_checks(conn, [m.id]).get(m.id)
    checks = queries.recent_checks(conn, m.id, before=before, limit=limit + 1)
    more = len(checks) > limit
    checks = checks[:limit]
    uptime = queries.daily_uptime(conn, m.id, days)
    doc = {
        "id": str(m.id), "name": m.name, "type": m.type,
        "target": target_of(m) if public else None, "interval_s": m.interval_s,
        "state": statuspage.state_of(live.get(str(m.id)), last),
        "last_check": statuspage.iso_utc(last.time) if last else None, "window_days": days,
        "uptime_pct": None if stats is None or stats.uptime_pct is None
        else round(stats.uptime_pct, 4),
        "latency_ms": {"p50": _rounded(stats, 0.5), "p95": _rounded(stats, 0.95)},
        "daily": [{"day": d.day.isoformat(), "checks": d.total, "successes": d.success,
                   "uptime_pct": None if d.uptime_pct is None else round(d.uptime_pct, 4)}
                  for d in uptime],
        "recent_checks": [{
            "time": statuspage.iso_utc(c.time), "status": str(c.status), "latency_ms": c.latency_ms,
            "http_status": c.http_status, "error_code": c.error_code,
            "error": c.error_message if public else None,
            "cert_days_left": c.cert_days_left, "location": c.location or None}
            for c in checks],
        "incidents": statuspage.incident_views(conn, datetime.now(UTC) - timedelta(days=days),
                                               m.id),
        "maintenance": statuspage.maintenance_views(conn, m.id),
        "next": (f"/api/v1/monitors/{m.id}?limit={limit}&before="
                 f"{statuspage.iso_utc(checks[-1].time)}") if more and checks else None,
        "locations": [{**loc, "since": statuspage.iso_utc(loc["since"]) if loc["since"] else None,
                       "last_check": statuspage.iso_utc(loc["last_check"])}
                      for loc in fleet_views.locations(conn, m.id)],
    }
    return MonitorData(doc, uptime, last)


def _rounded(stats: queries.WindowStats | None, q: float) -> float | None:
    v = stats.percentile(q) if stats else None
    return None if v is None else round(v, 1)


_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_NUM = {"type": ["number", "null"]}
_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
# degraded: checked from several locations, failing from some but not a quorum of them
_STATE = {"type": "string", "enum": ["up", "down", "degraded", "unknown"]}
_LOCATION = {
    "type": "object",
    "required": ["location", "state", "since", "checks_24h", "uptime_pct_24h", "latency_ms_24h",
                 "last_check"],
    "properties": {
        "location": {"type": "string"}, "state": _STATE,
        "since": {"type": ["string", "null"], "format": "date-time"},
        "checks_24h": {"type": "integer"}, "uptime_pct_24h": _NULLABLE_NUM,
        "latency_ms_24h": {"type": "object", "required": ["p50", "p95"],
                           "properties": {"p50": _NULLABLE_NUM, "p95": _NULLABLE_NUM}},
        "last_check": {"type": ["string", "null"], "format": "date-time"}},
}
_SUMMARY = {
    "type": "object",
    "required": ["id", "name", "target", "state", "last_check", "uptime_pct", "p95_ms", "url"],
    "properties": {
        "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"},
        "target": _NULLABLE_STR, "state": _STATE,
        "last_check": {"type": ["string", "null"], "format": "date-time"},
        "uptime_pct": _NULLABLE_NUM, "p95_ms": _NULLABLE_NUM, "url": {"type": "string"}},
}
_CHECK = {
    "type": "object",
    "required": ["time", "status", "latency_ms", "http_status", "error_code", "error"],
    "properties": {
        "time": {"type": "string", "format": "date-time"},
        "status": {"type": "string", "enum": ["success", "failure", "timeout", "error"]},
        "latency_ms": {"type": ["integer", "null"]}, "http_status": {"type": ["integer", "null"]},
        "error_code": _NULLABLE_STR, "error": _NULLABLE_STR,
        "cert_days_left": {"type": ["integer", "null"]}, "location": _NULLABLE_STR},
}
_INCIDENT = {
    "type": "object",
    "required": ["id", "monitor_id", "monitor", "open", "started_at", "ended_at", "duration_s",
                 "first_error_code", "first_error", "note"],
    "properties": {
        "id": {"type": "integer"}, "monitor_id": {"type": "string", "format": "uuid"},
        "monitor": {"type": "string"}, "open": {"type": "boolean"},
        "started_at": {"type": "string", "format": "date-time"},
        "ended_at": {"type": ["string", "null"], "format": "date-time"},
        "duration_s": {"type": "integer"}, "duration": {"type": "string"},
        "first_error_code": _NULLABLE_STR, "first_error": _NULLABLE_STR, "note": _NULLABLE_STR},
}
_WINDOW = {
    "type": "object",
    "required": ["id", "monitor_id", "monitor", "starts_at", "ends_at", "active", "note"],
    "properties": {
        "id": {"type": "integer"}, "monitor_id": {"type": ["string", "null"], "format": "uuid"},
        "monitor": _NULLABLE_STR, "starts_at": {"type": "string", "format": "date-time"},
        "ends_at": {"type": "string", "format": "date-time"}, "active": {"type": "boolean"},
        "note": {"type": "string"}},
}
_JSON = "application/json"


def _responses(ok_schema: dict[str, Any], *codes: int) -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": "OK",
                                   "content": {_JSON: {"schema": ok_schema}}}}
    for code in codes:
        out[str(code)] = {"description": {400: "Bad request", 404: "Not found",
                                          503: "Database unavailable"}[code],
                          "content": {_JSON: {"schema": _ERROR}}}
    return out


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Lighthouse status API", "version": __version__,
             "description": "Read-only status of the monitors a Lighthouse prober shows."},
    "paths": {
        "/api/v1/status": {"get": {
            "operationId": "getStatus", "summary": "All active monitors (by name, paged)",
            "parameters": [{"name": "page", "in": "query", "required": False,
                            "schema": {"type": "integer", "minimum": 1}}],
            "responses": _responses({
                "type": "object",
                "required": ["title", "generated_at", "overall", "window_days", "total",
                             "down", "degraded", "page", "pages", "monitors", "incidents",
                             "maintenance"],
                "properties": {
                    "title": {"type": "string"},
                    "generated_at": {"type": "string", "format": "date-time"},
                    "overall": _STATE, "window_days": {"type": "integer"},
                    "total": {"type": "integer"}, "down": {"type": "integer"},
                    "degraded": {"type": "integer"},
                    "page": {"type": "integer"}, "pages": {"type": "integer"},
                    "monitors": {"type": "array", "items": _SUMMARY},
                    "incidents": {"type": "array", "items": _INCIDENT},
                    "maintenance": {"type": "array", "items": _WINDOW}}}, 400, 404, 503)}},
        "/api/v1/monitors/{id}": {"get": {
            "operationId": "getMonitor",
            "summary": "One monitor: daily uptime, latency percentiles, recent checks",
            "parameters": [
                {"name": "id", "in": "path", "required": True,
                 "schema": {"type": "string", "format": "uuid"}},
                {"name": "before", "in": "query", "required": False,
                 "schema": {"type": "string", "format": "date-time"}},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": RECENT_MAX}}],
            "responses": _responses({
                "type": "object",
                "required": ["id", "name", "type", "target", "interval_s", "state",
                             "last_check", "window_days", "uptime_pct", "latency_ms", "daily",
                             "recent_checks", "incidents", "maintenance", "next",
                             "locations"],
                "properties": {
                    "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"},
                    "type": {"type": "string"}, "target": _NULLABLE_STR,
                    "interval_s": {"type": "integer"}, "state": _STATE,
                    "last_check": {"type": ["string", "null"], "format": "date-time"},
                    "window_days": {"type": "integer"}, "uptime_pct": _NULLABLE_NUM,
                    "latency_ms": {"type": "object", "required": ["p50", "p95"],
                                   "properties": {"p50": _NULLABLE_NUM, "p95": _NULLABLE_NUM}},
                    "daily": {"type": "array", "items": {
                        "type": "object", "required": ["day", "checks", "successes", "uptime_pct"],
                        "properties": {"day": {"type": "string", "format": "date"},
                                       "checks": {"type": "integer"},
                                       "successes": {"type": "integer"},
                                       "uptime_pct": _NULLABLE_NUM}}},
                    "recent_checks": {"type": "array", "items": _CHECK},
                    "incidents": {"type": "array", "items": _INCIDENT},
                    "maintenance": {"type": "array", "items": _WINDOW},
                    "next": _NULLABLE_STR,
                    "locations": {"type": "array", "items": _LOCATION}}}, 400, 404, 503)}},
        "/api/v1/openapi.json": {"get": {
            "operationId": "getOpenApi", "summary": "This document",
            "responses": {"200": {"description": "OK",
                                  "content": {_JSON: {"schema": {"type": "object"}}}}}}},
    },
}
