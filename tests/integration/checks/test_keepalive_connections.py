"""Keep-alive monitors reuse one connection; a connection the server dropped while idle is
retried once on a fresh one, so a server's idle timeout is never reported as an outage."""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from lighthouse.checks import CheckContext, run_check
from lighthouse.models import Monitor, Status

from tests.unit.checks.aio import run_async


class _KeepAliveServer:
    """HTTP/1.1 server counting connections; `answers` = requests served per connection."""

    def __init__(self, answers: int) -> None:
        self.connections = 0
        self.requests = 0
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                return

            def setup(self):
                super().setup()
                srv.connections += 1
                self.served = 0

            def do_GET(self):  # noqa: N802
                if self.served >= answers:  # read the request, then drop the connection
                    self.close_connection = True
                    return
                self.served += 1
                srv.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _checks(url: str, n: int, keepalive: bool) -> list:
    async def go():
        ctx = CheckContext.create(allow_cidrs=["127.0.0.0/8"])
        monitor = Monitor(uuid.uuid4(), "ka", "http", {"url": url, "keepalive": keepalive}, 60)
        try:
            return [await run_check(monitor, ctx) for _ in range(n)]
        finally:
            await ctx.aclose()

    return run_async(go())


@pytest.mark.parametrize(("keepalive", "connections"), [(True, 1), (False, 5)])
def test_keepalive_reuses_one_connection(keepalive, connections):
    srv = _KeepAliveServer(answers=100)
    try:
        results = _checks(srv.url, 5, keepalive)
    finally:
        srv.close()
    assert [r.status for r in results] == [Status.SUCCESS] * 5
    assert (srv.connections, srv.requests) == (connections, 5)
    # Connect time is measured on the checks that connected, and only there.
    assert sum("connect" in r.timings for r in results) == connections


def test_a_reused_connection_the_server_dropped_is_retried_once():
    srv = _KeepAliveServer(answers=1)  # every second request on a connection is dropped
    try:
        results = _checks(srv.url, 4, keepalive=True)
    finally:
        srv.close()
    assert [r.status for r in results] == [Status.SUCCESS] * 4, [r.error_message for r in results]
    assert srv.requests == 4 and srv.connections == 4
