"""HTTP checks against a real local server: assertions, redirects, timings, both transports."""

from __future__ import annotations

import json

from lighthouse.models import Status


def test_plain_success_has_timings_and_no_snippet(http):
    r = http("/ok")
    assert r.status is Status.SUCCESS, r.error_message
    assert r.http_status == 200 and r.error_code is None
    assert set(r.timings) >= {"dns", "connect", "ttfb", "total"}
    assert r.latency_ms == round(r.timings["total"])
    assert r.response_snippet is None  # snippets only for failures by default


def test_unexpected_status_is_failure_with_snippet(http):
    r = http("/503")
    assert (r.status, r.error_code, r.http_status) == (Status.FAILURE, "status", 503)
    assert r.response_snippet == "down for maintenance"


def test_expected_status_accepts_listed_codes(http):
    assert http("/503", expected_status=[503]).status is Status.SUCCESS
    assert http("/503", expected_status=["5xx"]).status is Status.SUCCESS
    assert http("/ok", expected_status=["500-599"]).error_code == "status"


def test_keyword_assertion(http):
    assert http("/ok", keyword="hello").status is Status.SUCCESS
    r = http("/ok", keyword="goodbye")
    assert (r.status, r.error_code) == (Status.FAILURE, "assertion")
    assert r.response_snippet == "hello world"


def test_json_path_assertions(http):
    assert http("/json", json_path="$.status", json_expected="ok").status is Status.SUCCESS
    assert http("/json", json_path="$.items[0].id", json_expected=7).status is Status.SUCCESS
    assert http("/json", json_path="items.0.name", json_expected="a b").status is Status.SUCCESS
    assert http("/json", json_path="$.ready", json_expected=True).status is Status.SUCCESS
    assert http("/json", json_path="$.ready", json_expected="true").status is Status.SUCCESS
    assert http("/json", json_path="$.count").status is Status.SUCCESS  # exists
    assert http("/json", json_path="$.ready", json_expected=1).error_code == "assertion"
    assert http("/json", json_path="$.missing").error_code == "assertion"
    assert http("/ok", json_path="$.a").error_code == "assertion"  # not JSON


def test_method_headers_body_and_host_header(http, hostile):
    r = http(
        "/echo",
        method="POST",
        body={"k": 1},
        headers={"X-Token": "abc"},
        json_path="$.body",
        json_expected='{"k": 1}',
    )
    assert r.status is Status.SUCCESS, r.error_message
    method, _path, headers, body = hostile.requests[-1]
    assert method == "POST" and json.loads(body) == {"k": 1}
    assert headers["x-token"] == "abc"
    assert headers["content-type"] == "application/json"
    assert headers["host"] == f"127.0.0.1:{hostile.port}"
    assert headers["user-agent"].startswith("lighthouse-prober/")


def test_name_is_resolved_then_original_host_header_kept(http, hostile):
    r = http(
        hostile.url("/echo", host="localhost"),
        json_path="$.host",
        json_expected=f"localhost:{hostile.port}",
    )
    assert r.status is Status.SUCCESS, r.error_message
    assert r.timings["dns"] > 0


def test_max_latency(http):
    r = http("/ok", max_latency_ms=1)
    # A loopback answer can beat 1 ms; when it does not, the code must be "latency".
    assert r.status is Status.SUCCESS or r.error_code == "latency"
    assert http("/ok", max_latency_ms=60_000).status is Status.SUCCESS


def test_redirect_followed_and_not(http):
    r = http("/redirect-ok", keyword="hello")
    assert r.status is Status.SUCCESS and r.timings["redirects"] == 1
    r = http("/redirect-ok", follow_redirects=False)
    assert (r.status, r.http_status) == (Status.SUCCESS, 301)  # 3xx accepted when not following
    r = http("/redirect-ok", follow_redirects=False, expected_status=[200])
    assert r.error_code == "status"


def test_303_turns_post_into_get(http):
    r = http("/see-other", method="POST", body="x", json_path="$.method", json_expected="GET")
    assert r.status is Status.SUCCESS, r.error_message


def test_chunked_body_with_extensions_and_trailers(http):
    assert http("/chunked", keyword="hello world").status is Status.SUCCESS


def test_gzip_answer_is_decoded(http):
    assert http("/gzip", keyword="compressed hello").status is Status.SUCCESS


def test_interim_100_continue_is_skipped(http):
    r = http("/continue", keyword="after continue")
    assert (r.status, r.http_status) == (Status.SUCCESS, 200)


def test_nul_bytes_never_reach_the_database(http):
    r = http("/nul")
    assert r.error_code == "status" and "\x00" not in r.response_snippet


def test_keepalive_monitor_uses_pooled_connections(hostile):
    from tests.integration.checks.conftest import probe

    r = probe("http", {"url": hostile.url("/ok"), "keepalive": True}, {"cafile": hostile.ca_file})
    assert r.status is Status.SUCCESS, r.error_message


def test_head_request_has_no_body(http):
    r = http("/ok", method="HEAD")
    assert (r.status, r.http_status) == (Status.SUCCESS, 200), r.error_message
