"""The lean transport's response parser, fed byte by byte and in odd splits."""

from __future__ import annotations

import asyncio

import pytest
from lighthouse.checks import CheckError
from lighthouse.checks.lean_fetch import _ResponseProtocol
from lighthouse.checks.progress import Progress

from tests.unit.checks.aio import run_async


class _FakeTransport(asyncio.Transport):
    aborted = False

    def abort(self) -> None:
        self.aborted = True


def _parse(chunks, head=False, max_body=1000, eof=True):
    async def go():
        proto = _ResponseProtocol(head, 4096, max_body, Progress())
        transport = _FakeTransport()
        proto.connection_made(transport)
        for chunk in chunks:
            proto.data_received(chunk)
        if eof and not proto.done.done():
            proto.eof_received()
        await proto.done
        return proto, transport

    return run_async(go())


def _bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


RESPONSES = {
    "length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"2\r\nhe\r\n3;x=y\r\nllo\r\n0\r\n\r\n",
    "close": b"HTTP/1.0 200 OK\r\n\r\nhello",
    "continue": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
}


@pytest.mark.parametrize("kind", sorted(RESPONSES))
@pytest.mark.parametrize("split", ["whole", "bytewise"])
def test_framings_parse_identically(kind, split):
    data = RESPONSES[kind]
    proto, transport = _parse([data] if split == "whole" else _bytewise(data))
    assert (proto.status, bytes(proto.body), proto.truncated) == (200, b"hello", False)
    assert transport.aborted


def test_body_cap_truncates_and_stops():
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000
    proto, transport = _parse([data], max_body=1000, eof=False)
    assert len(proto.body) == 1000 and proto.truncated and transport.aborted


def test_head_and_204_have_no_body():
    proto, _ = _parse([b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"], head=True, eof=False)
    assert proto.status == 200 and proto.body == b""
    proto, _ = _parse([b"HTTP/1.1 204 No Content\r\n\r\n"], eof=False)
    assert proto.status == 204


@pytest.mark.parametrize(
    "data",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * 5000,
    ],
)
def test_malformed_responses_raise_check_errors(data):
    with pytest.raises(CheckError):
        _parse([data])
