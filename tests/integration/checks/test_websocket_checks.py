"""websocket checks against a real local WebSocket server (ws and wss)."""

from __future__ import annotations

import pytest
from lighthouse.models import Status

from tests.integration.checks.conftest import probe
from tests.support.wsserver import WsServer


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    server = WsServer().start()
    ca = tmp_path_factory.mktemp("wsca") / "ca.pem"
    server.ca.cert_pem.write_to_path(str(ca))
    server.ca_file = str(ca)
    yield server
    server.stop()


def test_connect_only_and_timings(ws):
    r = probe("websocket", {"url": ws.url("/silent")})
    assert r.status is Status.SUCCESS, r.error_message
    assert r.http_status == 101
    assert {"dns", "connect", "upgrade", "total"} <= set(r.timings)


def test_send_and_expect_substring_and_json_path(ws):
    r = probe("websocket", {"url": ws.url("/echo"), "send": '{"ping": 42}', "expect": "42",
                            "headers": {"Authorization": "Bearer t0k"}})
    assert r.status is Status.SUCCESS, r.error_message
    assert r.timings["first_message"] > 0
    assert ws.headers[-1]["Authorization"] == "Bearer t0k"
    assert ws.headers[-1]["User-Agent"].startswith("lighthouse-prober/")
    j = probe("websocket", {"url": ws.url("/hello"), "json_path": "$.status",
                            "json_expected": "ok"})
    assert j.status is Status.SUCCESS, j.error_message
    bad = probe("websocket", {"url": ws.url("/hello"), "json_path": "$.n", "json_expected": 2})
    assert (bad.status, bad.error_code) == (Status.FAILURE, "assertion")
    assert '"hello"' in bad.response_snippet
    miss = probe("websocket", {"url": ws.url("/echo"), "send": "ping", "expect": "pong"})
    assert miss.error_code == "assertion" and "'pong'" in miss.error_message


def test_wss_checks_the_certificate_and_reports_tls_time(ws):
    r = probe("websocket", {"url": ws.url("/echo", tls=True), "send": "x", "expect": "x"},
              {"cafile": ws.ca_file})
    assert r.status is Status.SUCCESS, r.error_message
    assert r.timings["tls"] > 0 and r.cert_days_left is not None
    untrusted = probe("websocket", {"url": ws.url("/echo", tls=True)})  # system CAs only
    assert (untrusted.status, untrusted.error_code) == (Status.ERROR, "tls")
    assert "certificate verify failed" in untrusted.error_message


def test_redirects_are_refused_and_other_statuses_fail(ws):
    r = probe("websocket", {"url": ws.url("/moved")})
    assert (r.status, r.error_code, r.http_status) == (Status.FAILURE, "status", 301)
    assert "redirect to ws://169.254.169.254/ refused" in r.error_message
    f = probe("websocket", {"url": ws.url("/forbidden")})
    assert (f.error_code, f.http_status) == ("status", 403)
    assert "no entry" in f.response_snippet


def test_server_closing_silence_and_refused(ws):
    closed = probe("websocket", {"url": ws.url("/close"), "expect": "x"})
    assert closed.error_code == "reset" and "1011" in closed.error_message
    assert "overloaded" in closed.error_message
    silent = probe("websocket", {"url": ws.url("/silent"), "expect": "x", "timeout_s": 0.5})
    assert silent.status is Status.TIMEOUT and "first_message" in silent.error_message
    refused = probe("websocket", {"url": "ws://127.0.0.1:9/"})
    assert (refused.status, refused.error_code) == (Status.ERROR, "refused")
    not_ws = probe("websocket", {"url": f"ws://127.0.0.1:{ws.port}/x"},
                   {"allow_cidrs": []})
    assert not_ws.error_code == "ssrf"


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({}, "url"),
        ({"url": "http://127.0.0.1/"}, "url"),
        ({"url": "ws://u:p@127.0.0.1/"}, "url"),
        ({"url": "ws://127.0.0.1/", "headers": {"X": 1}}, "headers"),
        ({"url": "ws://127.0.0.1/", "json_path": "$.a["}, "json_path"),
        ({"url": "ws://127.0.0.1/", "json_expected": 1}, "json_expected"),
        ({"url": "ws://127.0.0.1/", "sned": "x"}, "sned"),
        ({"url": "ws://127.0.0.1/", "subprotocols": "chat"}, "subprotocols"),
    ],
)
def test_config_errors_name_the_key(cfg, key):
    r = probe("websocket", cfg)
    assert r.error_code == "config" and key in r.error_message
