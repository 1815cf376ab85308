from __future__ import annotations

import uuid

import pytest
from lighthouse.checks import CheckContext, CheckError, ErrorCode
from lighthouse.checks.assertions import check_json, parse_expected_status, parse_json_path
from lighthouse.checks.fetch import decode_body
from lighthouse.checks.http import parse_http_config
from lighthouse.checks.runner import run_check
from lighthouse.models import Monitor, Status

from tests.unit.checks.aio import run_async


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("$.a.b[0]", ["a", "b", 0]),
        ("a.b.0", ["a", "b", 0]),
        ("$['a b'][2].c", ["a b", 2, "c"]),
        ("$", []),
        ("$.items[10].x-y", ["items", 10, "x-y"]),
    ],
)
def test_json_path_subset(path, steps):
    assert parse_json_path(path) == steps


@pytest.mark.parametrize("bad", ["$.a[", "$..a", "$.a[*]", "$.a b"])
def test_bad_json_path_is_config_error(bad):
    with pytest.raises(CheckError) as err:
        parse_json_path(bad)
    assert err.value.code is ErrorCode.CONFIG


def test_json_values_compare_strictly():
    body = '{"ok": true, "n": 1, "s": "1", "l": [1, 2]}'
    check_json(body, "$.ok", True)
    check_json(body, "$.ok", "true")
    check_json(body, "$.n", 1)
    check_json(body, "$.l[-1]", 2)
    for path, expected in [("$.ok", 1), ("$.n", True), ("$.s", 1), ("$.l[5]", 1)]:
        with pytest.raises(CheckError):
            check_json(body, path, expected)


def test_expected_status_forms():
    assert parse_expected_status([200, "3xx"]) == frozenset({200, *range(300, 400)})
    assert parse_expected_status("200-202") == frozenset({200, 201, 202})
    for bad in ["abc", "700", "2xxx", "300-200"]:
        with pytest.raises(CheckError):
            parse_expected_status(bad)


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({}, "url"),
        ({"url": "ftp://x/"}, "url"),
        ({"url": "http://x/", "method": "BREW"}, "method"),
        ({"url": "http://x/", "timeout_s": 0}, "timeout_s"),
        ({"url": "http://x/", "timeout_s": "5"}, "timeout_s"),
        ({"url": "http://x/", "headers": {"X-A": "a\r\nInjected: 1"}}, "headers"),
        ({"url": "http://x/", "headers": {"Bad Name": "v"}}, "headers"),
        ({"url": "http://x/", "follow_redirects": "yes"}, "follow_redirects"),
        ({"url": "http://x/", "max_redirects": 100}, "max_redirects"),
    ],
)
def test_config_errors_name_the_key(config, key):
    with pytest.raises(CheckError) as err:
        parse_http_config(config, CheckContext())
    assert err.value.code is ErrorCode.CONFIG and err.value.message.startswith(key)


def test_run_check_never_raises_on_bad_config_or_type():

    ctx = CheckContext()
    for kind, cfg in [
        ("http", {"url": None}),
        ("websocket", {}),
        ("tcp", {"host": "x"}),
        ("tls", {"host": "", "port": 443}),
        ("http", "not a dict"),
    ]:
        r = run_async(run_check(Monitor(uuid.uuid4(), "m", kind, cfg, 60), ctx))
        assert (r.status, r.error_code) == (Status.ERROR, "config")


def test_decode_body_is_bounded():
    import gzip
    import zlib

    bomb = gzip.compress(b"\0" * 10_000_000)
    out, truncated = decode_body(bomb, "gzip", 4096)
    assert len(out) == 4096 and truncated
    assert decode_body(zlib.compress(b"abc"), "deflate", 100) == (b"abc", False)
    assert decode_body(b"raw", "br", 100) == (b"raw", False)
    with pytest.raises(CheckError):
        decode_body(b"not gzip", "gzip", 100)
