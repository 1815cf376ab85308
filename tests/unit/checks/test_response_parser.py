"""The transport's response handling (httptools underneath), fed whole, byte by byte, in odd
splits, and fuzzed: every input ends, as a response or a CheckError, within bounded memory."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lighthouse.checks import CheckError, ErrorCode
from lighthouse.checks.progress import Progress
from lighthouse.checks.transport import MAX_INTERIM, _Exchange

from tests.unit.checks.aio import run_async

MAX_HEADER = 4096


def _feed(chunks, head=False, max_body=1000, keep_body=1000, eof=True) -> _Exchange:
    """Feed chunks to a fresh exchange, then EOF; returns it once its outcome is decided."""

    async def go() -> _Exchange:
        ex = _Exchange(head, MAX_HEADER, max_body, keep_body, Progress())
        for chunk in chunks:
            ex.feed(chunk)
        if eof:
            ex.end_of_stream()
        assert ex.done.done(), "the outcome must be decided once the bytes are in"
        return ex

    return run_async(go())


def _parse(chunks, **kw) -> _Exchange:
    ex = _feed(chunks, **kw)
    if ex.done.exception() is not None:
        raise ex.done.exception()
    return ex


def _bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


RESPONSES = {
    "length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"2\r\nhe\r\n3;x=y\r\nllo\r\n0\r\n\r\n",
    "chunked-trailers": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n",
    "close": b"HTTP/1.0 200 OK\r\n\r\nhello",
    "continue": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "early-hints": b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
}


@pytest.mark.parametrize("kind", sorted(RESPONSES))
@pytest.mark.parametrize("split", ["whole", "bytewise"])
def test_framings_parse_identically(kind, split):
    data = RESPONSES[kind]
    ex = _parse([data] if split == "whole" else _bytewise(data))
    assert (ex.status, bytes(ex.body), ex.truncated) == (200, b"hello", False)
    assert ex.complete == (kind != "close")


def test_keep_alive_is_reusable_only_when_the_server_allows_it():
    assert _parse([RESPONSES["length"]], eof=False).reusable
    closing = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    assert not _parse([closing], eof=False).reusable
    assert not _parse([RESPONSES["close"]]).reusable  # ended by EOF


def test_body_cap_truncates_and_stops():
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000
    ex = _parse([data], max_body=1000, eof=False)
    assert len(ex.body) == 1000 and ex.truncated and not ex.reusable


def test_only_the_snippet_is_kept_but_the_body_is_counted():
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 900\r\n\r\n" + b"x" * 900
    ex = _parse([data], keep_body=10, eof=False)
    assert (bytes(ex.body), ex.body_size, ex.truncated) == (b"x" * 10, 900, False)


def test_head_and_204_have_no_body():
    ex = _parse([b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"], head=True, eof=False)
    assert ex.status == 200 and ex.body == b""
    assert _parse([b"HTTP/1.1 204 No Content\r\n\r\n"], eof=False).status == 204


MALFORMED = {
    "ssh banner": (b"SSH-2.0-OpenSSH\r\n\r\n", ErrorCode.PROTOCOL),
    "4-digit status": (b"HTTP/1.1 2000 OK\r\n\r\n", ErrorCode.PROTOCOL),
    "status 999": (b"HTTP/1.1 999 OK\r\n\r\n", ErrorCode.PROTOCOL),
    "header without colon": (b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", ErrorCode.PROTOCOL),
    "two lengths": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", ErrorCode.PROTOCOL),
    "length and chunked": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
        ErrorCode.PROTOCOL),
    "bad chunk size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ErrorCode.PROTOCOL),
    # The case that froze the hand-written parser: a size int() accepts but cannot advance on.
    "negative chunk size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nabc", ErrorCode.PROTOCOL),
    "signed chunk size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello", ErrorCode.PROTOCOL),
    "underscore chunk size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\nabc", ErrorCode.PROTOCOL),
    "short body": (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", ErrorCode.PROTOCOL),
    "endless header": (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 5000, ErrorCode.PROTOCOL),
    "header flood": (
        b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 1000 + b"\r\n", ErrorCode.PROTOCOL),
    "upgrade": (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
        ErrorCode.PROTOCOL),
    "bare LF": (b"HTTP/1.1 200 OK\nContent-Length: 1\n\nx", ErrorCode.PROTOCOL),
    "nothing": (b"", ErrorCode.RESET),
    "half a status line": (b"HTTP/1.1 20", ErrorCode.PROTOCOL),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
@pytest.mark.parametrize("split", ["whole", "bytewise"])
def test_malformed_responses_are_specific_check_errors(name, split):
    data, code = MALFORMED[name]
    with pytest.raises(CheckError) as err:
        _parse([data] if split == "whole" else _bytewise(data))
    assert err.value.code is code, err.value.message


def test_interim_response_flood_is_refused_without_recursion():
    flood = b"HTTP/1.1 100 Continue\r\n\r\n" * 100_000  # 2.5 MB of interim responses
    with pytest.raises(CheckError) as err:
        _parse([flood])
    assert err.value.code is ErrorCode.PROTOCOL and str(MAX_INTERIM) in err.value.message
    ok = b"HTTP/1.1 100 Continue\r\n\r\n" * MAX_INTERIM + RESPONSES["length"]
    assert _parse([ok]).status == 200


# -- fuzzing: arbitrary bytes, and mutations of valid responses, in arbitrary splits
_PIECES = [
    b"HTTP/1.1 ", b"HTTP/1.0 ", b"200 OK", b"100 Continue", b"101 Up", b"204 No", b"\r\n",
    b"\n", b"Content-Length: ", b"Transfer-Encoding: chunked", b"Connection: close",
    b"Upgrade: x", b"0", b"5", b"-1", b"ffffffffffffffffff", b"hello", b";ext=1", b" ", b":",
    b"\x00", b"\xff", b"X-A: b",
]
_response_like = st.lists(st.sampled_from(_PIECES), max_size=40).map(b"".join)
_payload = st.one_of(st.binary(max_size=600), _response_like,
                     st.sampled_from(list(RESPONSES.values())).flatmap(
                         lambda r: st.integers(0, len(r)).map(lambda i: r[:i] + b"\xff" + r[i:])))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_payload, cuts=st.lists(st.integers(0, 700), max_size=6), head=st.booleans())
def test_fuzzed_responses_end_as_a_response_or_a_check_error(data, cuts, head):
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    chunks = [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    ex = _feed(chunks, head=head, max_body=256, keep_body=64)
    exc = ex.done.exception()
    assert exc is None or isinstance(exc, CheckError), repr(exc)
    if exc is not None:
        assert exc.code in (ErrorCode.PROTOCOL, ErrorCode.RESET), exc.message
    else:
        assert 200 <= ex.status <= 599
    assert len(ex.body) <= 64 and len(ex.headers) <= MAX_HEADER
