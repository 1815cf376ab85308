"""ServiceVerifier against a real PostgreSQL 15 and a local HTTP /health endpoint."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from lighthouse_ops.aws.verify import ServiceVerifier
from lighthouse_ops.aws.waiters import Backoff

from tests.integration.aws.fakes import FakeClock
from tests.support.pgserver import free_port


@pytest.fixture
def health():
    """A /health endpoint answering 503 for the first `sick` requests, then 200."""

    class Handler(BaseHTTPRequestHandler):
        sick = 0

        def do_GET(self):  # noqa: N802 (http.server API)
            code = 503 if Handler.sick > 0 else 200
            Handler.sick -= 1
            self.send_response(code)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Handler, f"http://127.0.0.1:{server.server_port}/health"
    server.shutdown()


def test_real_postgres_and_prober_pass(pg15, health):
    handler, url = health
    handler.sick = 2
    checks = ServiceVerifier(dsn=pg15.dsn(), prober_url=url, clock=FakeClock()).verify()
    assert [(c.name, c.ok) for c in checks] == [("postgresql", True), ("prober", True)]
    assert checks[0].detail.startswith("PostgreSQL 15")


def test_unreachable_postgres_fails_with_the_driver_error():
    dsn = f"postgresql://nobody@127.0.0.1:{free_port()}/postgres"
    [check] = ServiceVerifier(dsn=dsn, clock=FakeClock(),
                              backoff=Backoff(timeout_s=3, initial_s=1)).verify()
    assert not check.ok and "127.0.0.1" in check.detail


def test_sick_prober_fails_with_the_status(health):
    handler, url = health
    handler.sick = 10**6
    [check] = ServiceVerifier(prober_url=url, clock=FakeClock(),
                              backoff=Backoff(timeout_s=3, initial_s=1)).verify()
    assert (check.ok, check.detail) == (False, "HTTP 503")
