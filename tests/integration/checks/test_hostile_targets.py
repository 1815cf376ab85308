"""Hostile targets must not hurt the prober: every case is a real local server misbehaving."""

from __future__ import annotations

import pytest
from lighthouse.models import Status

CAP = 256 * 1024


@pytest.mark.parametrize("path", ["/huge", "/endless-chunked", "/endless-close"])
def test_endless_bodies_stop_at_the_read_cap(http, hostile, path):
    before = hostile.written[path]
    r = http(path, timeout_s=20, ctx_kwargs={"max_body_bytes": CAP})
    # The check ends on its own (not by the deadline) once the cap is read.
    assert r.status is Status.SUCCESS, r.error_message
    assert r.http_status == 200
    # The server could only push what the cap plus socket buffers took: far from 10 GiB.
    assert hostile.written[path] - before < 64 * 1024 * 1024


def test_keyword_past_the_cap_is_body_too_large(http):
    r = http("/huge", keyword="never-there", ctx_kwargs={"max_body_bytes": CAP})
    assert (r.status, r.error_code) == (Status.FAILURE, "body_too_large")
    assert len(r.response_snippet) == 1024


def test_gzip_bomb_is_decoded_only_up_to_the_cap(http):
    r = http("/gzip-bomb", json_path="$.x", ctx_kwargs={"max_body_bytes": CAP})
    assert (r.status, r.error_code) == (Status.FAILURE, "body_too_large")


def test_slow_drip_hits_the_total_deadline(http):
    r = http("/drip", timeout_s=0.5)
    assert (r.status, r.error_code) == (Status.TIMEOUT, "timeout")
    assert "0.5 s" in r.error_message


def test_stalled_server_times_out_waiting_for_the_response(http):
    r = http("/stall", timeout_s=0.3)
    assert (r.status, r.error_code) == (Status.TIMEOUT, "timeout")
    assert "response" in r.error_message
    assert {"connect", "total"} <= set(r.timings)  # timings gathered before the deadline survive


def test_redirect_loop_is_cut_at_max_redirects(http):
    r = http("/loop", max_redirects=3)
    assert (r.status, r.error_code) == (Status.FAILURE, "too_many_redirects")
    assert r.timings["redirects"] == 4


@pytest.mark.parametrize("path", ["/to-metadata", "/to-private", "/to-mapped"])
def test_redirect_to_internal_address_is_refused(http, hostile, path):
    before = len(hostile.requests)
    r = http(path)
    assert (r.status, r.error_code) == (Status.ERROR, "ssrf"), r.error_message
    assert len(hostile.requests) == before + 1  # only the first hop reached a server


def test_redirect_to_non_http_scheme_is_protocol_error(http):
    assert http("/to-file").error_code == "protocol"


@pytest.mark.parametrize(
    ("path", "code"),
    [  # one parser for every connection mode: one verdict per malformed response
        ("/garbage", "protocol"),
        ("/ssh", "protocol"),
        ("/bad-length", "protocol"),
        ("/short-body", "protocol"),
        ("/header-flood", "protocol"),
        ("/close", "reset"),
        ("/negative-chunk", "protocol"),
        ("/interim-flood", "protocol"),
    ],
)
def test_garbage_http_is_an_error_not_a_crash(http, path, code):
    r = http(path, timeout_s=10)
    assert (r.status, r.error_code) == (Status.ERROR, code), r.error_message


def test_refused_port(http):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = http(f"http://127.0.0.1:{port}/")
    assert (r.status, r.error_code) == (Status.ERROR, "refused")


@pytest.mark.parametrize(
    ("flavour", "code"),
    [
        ("untrusted", "tls"),
        ("wrong_name", "tls"),
        ("expired", "cert_expired"),
        ("plaintext", "tls"),
    ],
)
def test_invalid_tls_is_refused(http, hostile, flavour, code):
    r = http(hostile.tls_url(flavour), timeout_s=5)
    assert r.error_code == code, r.error_message
    assert r.status is (Status.FAILURE if code == "cert_expired" else Status.ERROR)


def test_valid_tls_with_sni_and_days_left(http, hostile):
    r = http(hostile.tls_url("good"), keyword="hello")
    assert r.status is Status.SUCCESS, r.error_message
    assert r.timings["tls"] > 0 and r.cert_days_left > 300
    assert r.cert_expires_at is not None  # the exact notAfter, for probe_ssl_earliest_cert_expiry
    assert r.cert_days_left == int((r.cert_expires_at - r.time.timestamp()) // 86400)


def test_ssrf_refused_without_allow_list(hostile, transport):
    from tests.integration.checks.conftest import probe

    r = probe("http", {"url": hostile.url("/ok"), "keepalive": transport == "keepalive"},
              {"allow_cidrs": []})
    assert (r.status, r.error_code) == (Status.ERROR, "ssrf")
    assert "loopback" in r.error_message


def test_body_without_assertions_is_read_to_the_cap_but_only_the_snippet_kept(http, hostile):
    before = hostile.written["/endless-close"]
    r = http("/endless-close", expected_status=[201], ctx_kwargs={"max_body_bytes": CAP})
    assert (r.status, r.error_code) == (Status.FAILURE, "status")
    assert r.response_snippet == "x" * 1024
    assert hostile.written["/endless-close"] - before > CAP  # read on to the cap, then stopped


def test_a_chunk_size_the_old_parser_looped_on_cannot_freeze_other_checks(hostile):
    """The freeze: `-1` as a chunk size spun the hand-written parser forever on the event loop.
    Now it is a protocol error at once, and a healthy monitor on the same loop is checked."""
    import asyncio
    import uuid

    from lighthouse.checks import CheckContext, run_check
    from lighthouse.models import Monitor

    from tests.unit.checks.aio import run_async

    async def both():
        ctx = CheckContext.create(allow_cidrs=["127.0.0.0/8"])
        try:
            return await asyncio.gather(*(
                run_check(Monitor(uuid.uuid4(), p, "http", {"url": hostile.url(p),
                                                            "timeout_s": 5}, 60), ctx)
                for p in ("/negative-chunk", "/ok")))
        finally:
            await ctx.aclose()

    bad, good = run_async(both())
    assert (bad.status, bad.error_code) == (Status.ERROR, "protocol"), bad.error_message
    assert "chunk size" in bad.error_message
    assert good.status is Status.SUCCESS


def test_interim_flood_is_cut_early(http, hostile):
    before = hostile.written["/interim-flood"]
    r = http("/interim-flood")
    assert r.error_code == "protocol" and "interim" in r.error_message
    assert hostile.written["/interim-flood"] - before < 16 * 1024 * 1024


@pytest.mark.parametrize("path", ["/continue", "/early-hints"])
def test_a_few_interim_responses_are_fine(http, path):
    r = http(path, keyword="after")
    assert r.status is Status.SUCCESS, r.error_message


def test_deeply_nested_json_is_an_assertion_failure(http):
    r = http("/deep-json", json_path="$.x")
    assert (r.status, r.error_code) == (Status.FAILURE, "assertion"), r.error_message
    assert "nested" in r.error_message


@pytest.mark.parametrize(
    "charset", ["rot13", "base64", "zlib", "idna", "punycode", "undefined", "utf-16", "nope",
                "%00", "unicode_escape", "utf-7"])
def test_any_declared_charset_gives_a_verdict(http, charset):
    r = http(f"/charset?cs={charset}", keyword="world")
    assert r.error_code in (None, "assertion"), r.error_message
    if charset in ("rot13", "base64", "zlib", "idna", "punycode", "undefined", "nope", "%00"):
        assert r.status is Status.SUCCESS  # read as UTF-8: the keyword is found


def test_redirect_to_an_invalid_idn_is_a_protocol_error(http):
    r = http("/to-bad-idn")
    assert (r.status, r.error_code) == (Status.ERROR, "protocol"), r.error_message


@pytest.mark.parametrize(("host", "code"), [("xn--zz.example", "config"),
                                            ("a..b.example", "dns"),
                                            ("a" * 64 + ".example", "dns")])
def test_invalid_host_names_are_config_or_dns_errors(http, host, code):
    r = http(f"http://{host}/")
    assert r.error_code == code, r.error_message


def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_stored(http, hostile):
    url = f"http://user:s3cret@127.0.0.1:{hostile.port}"
    assert http(f"{url}/auth").status is Status.SUCCESS
    # Another host name: the credentials stay behind, like browsers.
    r = http(f"{url}/auth-elsewhere")
    assert (r.status, r.http_status) == (Status.FAILURE, 401)
    loop = http(f"{url}/loop", max_redirects=1)  # the message names the last URL
    assert loop.error_code == "too_many_redirects"
    assert "s3cret" not in loop.error_message and "***@127.0.0.1" in loop.error_message
