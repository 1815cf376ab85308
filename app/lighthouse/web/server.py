"""The prober's HTTP server: `/health`, `/metrics`, `/` (status page), `/api/v1/` (JSON).

A stdlib ThreadingHTTPServer in its own thread: the three endpoints are cheap and rare, and a
thread keeps them answering even when the event loop is busy with checks. Database reads for
the status page use a small synchronous connection pool; the page is cached for a few seconds
so a burst of visitors costs one set of queries, and kept gzipped too (90 SVG bars a monitor
make ~13 KiB of HTML each, which compresses about 20x).
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import psycopg
from psycopg_pool import ConnectionPool

from lighthouse import push
from lighthouse.fleet import views as fleet_views
from lighthouse.logs import event
from lighthouse.metrics import Metrics
from lighthouse.redact import redact
from lighthouse.web import api, badges, monitorpage, statuspage

log = logging.getLogger("lighthouse.web")

PAGE_CACHE_S = 5.0
MONITOR_PREFIX = "/api/v1/monitors/"
PAGE_PREFIX = "/monitors/"
BADGE_PREFIX = "/badge/"


class NoSuchPage(LookupError):
    """A status page number past the last page (or below 1)."""


def page_number(query: str) -> int:
    """The `page` query parameter (1 when absent); ValueError when it is not a number."""
    values = parse_qs(query).get("page")
    return int(values[-1]) if values else 1


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip: named with q > 0, or else `*` with q > 0."""
    weights: dict[str, float] = {}
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        q = params.strip().removeprefix("q=").strip() if "q=" in params else "1"
        try:
            weights[name.strip()] = float(q)
        except ValueError:
            weights[name.strip()] = 0.0
    return weights.get("gzip", weights.get("*", 0.0)) > 0


class BindError(OSError):
    def __init__(self, address: str, port: int, cause: OSError) -> None:
        super().__init__(cause.errno, f"cannot listen on {address}:{port}: "
                                      f"{cause.strerror or cause}")
        self.address, self.port = address, port


class WebApp:
    def __init__(self, *, metrics: Metrics, health: Callable[[], dict[str, Any]],
                 pool: ConnectionPool | None, title: str = "Lighthouse status",
                 days: int = 90, max_monitors: int = 200,
                 live_states: Callable[[], dict[str, str]] | None = None,
                 public_url: str = "",
                 branding: statuspage.Branding | None = None,
                 request_timeout_s: float = 30.0) -> None:
        self.metrics = metrics
        self.health = health
        self.pool = pool
        self.title = title
        self.days = days
        self.max_monitors = max_monitors
        self.live_states = live_states or dict
        self.public_url = public_url.rstrip("/")  # absolute links in the feed when known
        # A client that connects and then sends nothing (or less body than it announced) would
        # hold one of the server's threads for ever; this closes it instead.
        self.request_timeout_s = request_timeout_s
        self._badges: dict[tuple[uuid.UUID, str], tuple[float, bytes]] = {}
        self.branding = branding or statuspage.Branding()
        # page number -> (built at, collected page, html, gzipped html)
        self._pages: dict[int, tuple[float, statuspage.Page, bytes, bytes]] = {}
        self._page_lock = threading.Lock()
        self._servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def _live(self, conn: psycopg.Connection) -> dict[str, str]:
        """Monitor states: this prober's state machine, overridden by the fleet's combined
        verdicts where several locations check a monitor (lighthouse.fleet.views)."""
        return {**self.live_states(), **fleet_views.states(conn)}

    def status_page(self, page: int = 1) -> tuple[bytes, bytes]:
        """Page `page` as (html, gzipped html), rebuilt at most every PAGE_CACHE_S seconds.

        Raises NoSuchPage past the last page (and for page < 1)."""
        cached = self._cached_page(page)
        return cached[2], cached[3]

    def status_json(self, page: int = 1) -> dict[str, Any]:
        """The same page (same cache) as the JSON API's status document."""
        return api.status_document(self._cached_page(page)[1], self.title, self.days)

    def monitor_json(self, monitor_id: str, query: str) -> dict[str, Any]:
        mid = api.parse_monitor_id(monitor_id)
        before, limit = api.parse_monitor_query(query)
        with self._connection() as conn:
            return api.monitor_document(conn, mid, self.days, self._live(conn), before,
                                        limit)

    def monitor_page(self, monitor_id: str, query: str) -> bytes:
        mid = api.parse_monitor_id(monitor_id)
        before, limit = api.parse_monitor_query(query)
        with self._connection() as conn:
            built = monitorpage.collect(conn, mid, self.days, self._live(conn), before, limit)
        return monitorpage.render(built, self.title, self.days).encode()

    def badge(self, monitor_id: str, kind: str) -> bytes:
        """A monitor's badge, rebuilt at most every PAGE_CACHE_S (READMEs embed them: every
        view of the README is a request here)."""
        mid = api.parse_monitor_id(monitor_id)
        now = time.monotonic()
        hit = self._badges.get((mid, kind))
        if hit and now - hit[0] < PAGE_CACHE_S:
            return hit[1]
        with self._connection() as conn:
            body = badges.badge(conn, mid, kind, self.days, self._live(conn)).encode()
        if len(self._badges) > 10_000:  # only known monitors get here; keep it bounded anyway
            self._badges.clear()
        self._badges[(mid, kind)] = (now, body)
        return body

    def push(self, token: str, query: str) -> tuple[int, dict[str, Any]]:
        """A job's heartbeat: (HTTP status, JSON answer). `?status=up|down&msg=...`."""
        params = parse_qs(query)
        status = (params.get("status") or ["up"])[0]
        if status not in ("up", "down"):
            return 400, {"error": "status: expected up or down"}
        message = (params.get("msg") or [""])[0].replace("\x00", "")  # text cannot hold NUL
        with self._connection() as conn:
            mid = push.record_push(conn, token, status, redact(message) if message else None)
        if mid is None:  # unknown, paused and removed look the same from outside
            return 404, {"error": "no active push monitor has this token"}
        return 200, {"ok": True}

    def incident_feed(self) -> bytes:
        with self._connection() as conn:
            return badges.feed(conn, self.title, self.public_url, self.days)

    def _connection(self) -> AbstractContextManager[psycopg.Connection]:
        if self.pool is None:
            raise RuntimeError("no database pool")
        return self.pool.connection()

    def _cached_page(self, page: int) -> tuple[float, statuspage.Page, bytes, bytes]:
        with self._page_lock:
            now = time.monotonic()
            cached = self._pages.get(page)
            if cached and now - cached[0] < PAGE_CACHE_S:
                return cached
            if page < 1:
                raise NoSuchPage(page)
            with self._connection() as conn:
                built = statuspage.collect(conn, self.days, self._live(conn),
                                           self.max_monitors, page)
            if page > built.pages:
                raise NoSuchPage(page)
            body = statuspage.render(built, self.title, self.days,
                                     branding=self.branding).encode()
            # Keep only fresh pages: the cache never outgrows the pages visited in 5 s.
            self._pages = {n: c for n, c in self._pages.items() if now - c[0] < PAGE_CACHE_S}
            self._pages[page] = (now, built, body, gzip.compress(body, compresslevel=6))
            return self._pages[page]

    def start(self, hosts: str | Sequence[str], port: int) -> int:
        """Serve on `port` at each address in `hosts`; returns the port (chosen by the first
        bind when 0). If any address cannot be bound, none stays bound: BindError names it."""
        addrs = [hosts] if isinstance(hosts, str) else list(hosts)
        handler = self._handler()
        for addr in addrs:
            try:
                httpd = ThreadingHTTPServer((addr, port), handler)
            except OSError as exc:
                self.stop()
                raise BindError(addr, port, exc) from None
            httpd.daemon_threads = True
            port = int(httpd.server_address[1])  # the others bind the same port
            thread = threading.Thread(target=httpd.serve_forever, name=f"lh-web-{addr}",
                                      daemon=True)
            self._servers.append((httpd, thread))
            thread.start()
            event(log, "http server listening", host=addr, port=port)
        return port

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        app = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "lighthouse"
            sys_version = ""
            timeout = app.request_timeout_s

            def log_message(self, fmt: str, *args: Any) -> None:  # quiet; errors logged below
                return

            def _send(self, code: int, body: bytes, ctype: str,
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, code: int, doc: Any) -> None:
                self._send(code, json.dumps(doc, separators=(",", ":")).encode(),
                           "application/json")

            def _api(self, path: str, query: str) -> None:
                try:
                    if path == "/api/v1/openapi.json":
                        self._json(200, api.OPENAPI)
                    elif path == "/api/v1/status":
                        self._json(200, app.status_json(api.parse_page(query)))
                    elif path.startswith(MONITOR_PREFIX) and "/" not in path[len(MONITOR_PREFIX):]:
                        self._json(200, app.monitor_json(path[len(MONITOR_PREFIX):], query))
                    else:
                        self._json(404, {"error": f"no such API path: {path[:200]}"})
                except api.ApiError as exc:
                    self._json(exc.status, {"error": exc.message})
                except NoSuchPage as exc:
                    self._json(404, {"error": f"no status page {exc}"})
                except Exception as exc:  # database down or a bug: say which, never a trace
                    event(log, "api request failed", logging.ERROR, path=path[:200],
                          error=type(exc).__name__, detail=str(exc)[:200])
                    self._json(503, {"error": f"unavailable: {type(exc).__name__}"})

            def _push(self, path: str, query: str) -> None:
                # Read (and drop) a small body so the client sees our answer, not a reset.
                size = self.headers.get("Content-Length", "0")
                if size.isdigit() and int(size) <= 65536:
                    self.rfile.read(int(size))
                else:
                    self.close_connection = True
                try:
                    code, doc = app.push(path[len(push.PREFIX):], query)
                except Exception as exc:  # database down: the job may retry; never the token
                    event(log, "push failed", logging.ERROR, path=push.PREFIX + "…",
                          error=type(exc).__name__, detail=redact(str(exc))[:200])
                    code, doc = 503, {"error": f"unavailable: {type(exc).__name__}"}
                self._json(code, doc)

            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                path, _, query = self.path.partition("?")
                if path.startswith(push.PREFIX):
                    self._push(path, query)
                else:
                    self._not_allowed()

            def _not_allowed(self) -> None:
                # Read-only but for /push: 405 with Allow, not the stdlib's 501.
                body = b"method not allowed\n"
                self.send_response(405)
                allow = "GET, HEAD, POST" if self.path.startswith(push.PREFIX) else "GET, HEAD"
                self.send_header("Allow", allow)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def __getattr__(self, name: str) -> Any:
                # the stdlib looks up do_<METHOD> and answers 501 when it is missing
                if name.startswith("do_"):
                    return self._not_allowed
                raise AttributeError(name)

            def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
                self.do_GET()

            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                path, _, query = self.path.partition("?")
                try:
                    if path.startswith(push.PREFIX):  # curl -fsS from cron, GET or POST
                        self._push(path, query)
                    elif path == "/health":
                        h = app.health()
                        code = 200 if h.get("status") in ("ok", "degraded") else 503
                        self._send(code, json.dumps(h, default=str, indent=1).encode(),
                                   "application/json")
                    elif path.startswith("/api/"):
                        self._api(path, query)
                    elif path == "/feed.atom":
                        self._send(200, app.incident_feed(), "application/atom+xml")
                    elif path.startswith(BADGE_PREFIX):
                        mid, _, kind = path[len(BADGE_PREFIX):].partition("/")
                        self._send(200, app.badge(mid, kind.removesuffix(".svg")),
                                   "image/svg+xml")
                    elif path.startswith(PAGE_PREFIX) and "/" not in path[len(PAGE_PREFIX):]:
                        self._send(200, app.monitor_page(path[len(PAGE_PREFIX):], query),
                                   "text/html; charset=utf-8")
                    elif path == "/metrics":
                        self._send(200, app.metrics.render(), app.metrics.content_type)
                    elif path in ("/", "/status"):
                        try:
                            number = page_number(query)
                        except ValueError:
                            self._send(400, b"page must be a number\n", "text/plain")
                            return
                        try:
                            html, gz = app.status_page(number)
                        except NoSuchPage as exc:
                            self._send(404, f"no status page {exc}\n".encode(), "text/plain")
                            return
                        headers = {"Vary": "Accept-Encoding"}
                        if accepts_gzip(self.headers.get("Accept-Encoding", "")):
                            html, headers["Content-Encoding"] = gz, "gzip"
                        self._send(200, html, "text/html; charset=utf-8", headers)
                    else:
                        self._send(404, b"not found\n", "text/plain")
                except api.ApiError as exc:  # a bad id or parameter in a page or badge URL
                    self._send(exc.status, f"{exc.message}\n".encode(), "text/plain")
                except Exception as exc:
                    event(log, "request failed", logging.ERROR, path=path,
                          error=type(exc).__name__, detail=str(exc)[:200])
                    self._send(503, f"unavailable: {type(exc).__name__}\n".encode(),
                               "text/plain")

        return Handler

    def stop(self) -> None:
        servers, self._servers = self._servers, []
        for httpd, _thread in servers:
            httpd.shutdown()
            httpd.server_close()
