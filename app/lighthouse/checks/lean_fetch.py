"""A lean HTTP/1.1 exchange for the probe hot path: one new connection, one request, close.

httpx through httpcore and anyio spends most of a plain probe in layers a one-shot probe does
not need (pooling, stream wrappers, per-request objects); profiled in docs/benchmarks.md. This
transport does the one thing a probe needs on a raw asyncio Protocol: connect to the vetted IP,
TLS with the shared context and the original name as SNI, send one request with
`Connection: close`, parse the response with hard limits (header size, body read cap),
and abort the connection. Keep-alive monitors use httpx (httpx_fetch.py).
"""

from __future__ import annotations

import asyncio
import ssl
import time

import httpx

from lighthouse.checks.context import CheckContext
from lighthouse.checks.errors import CheckError, ErrorCode
from lighthouse.checks.fetch import Fetched, Hop, classify
from lighthouse.checks.progress import Progress, cert_days_left

_NO_BODY_STATUS = frozenset({204, 304})


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class _ResponseProtocol(asyncio.Protocol):
    """Collects one HTTP/1.1 response, enforcing the header limit and the body read cap."""

    def __init__(
        self,
        head_request: bool,
        max_header: int,
        max_body: int,
        progress: Progress,
        keep_body: int | None = None,
    ) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # The check may stop awaiting (deadline, TLS failure) before the connection is lost;
        # the error it ends with is reported by the check, not as "never retrieved" noise.
        self.done.add_done_callback(_retrieve)
        self.first_byte = 0.0  # perf_counter of the first response byte
        self._progress = progress
        self.transport: asyncio.Transport | None = None
        self._head = head_request
        self._max_header = max_header
        self._max_body = max_body  # read at most this much, then stop
        # Keep only this much in memory (the rest is read and counted): checks without a body
        # assertion need just the snippet, so 1,000 hostile targets cost 1 MiB, not 1 GiB.
        self._keep_body = max_body if keep_body is None else min(keep_body, max_body)
        self.body_size = 0
        self._buf = bytearray()
        self._headers_done = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.truncated = False
        self._mode = ""  # length | chunked | close | none
        self._remaining = 0  # length mode: bytes left; chunked: bytes left in this chunk
        self._chunk_state = "size"  # size | data | crlf | trailers

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        if not self.first_byte:
            self.first_byte = time.perf_counter()
            self._progress.phase = "body"
        try:
            self._feed(data)
        except CheckError as exc:
            self._finish(exc)

    def eof_received(self) -> bool:
        self._on_close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and not self.done.done():
            self._finish(exc)
        self._on_close()

    # -- parsing
    def _finish(self, exc: BaseException | None = None) -> None:
        if self.done.done():
            return
        if exc is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def _on_close(self) -> None:
        if self.done.done():
            return
        if self._headers_done and self._mode == "close":
            self._finish()
        elif not self._headers_done and not self._buf:
            self._finish(
                CheckError(ErrorCode.RESET, "server closed the connection without a response")
            )
        elif not self._headers_done:
            self._finish(
                CheckError(ErrorCode.PROTOCOL, "connection closed inside the response headers")
            )
        else:
            self._finish(CheckError(ErrorCode.PROTOCOL, "connection closed before the body ended"))

    def _feed(self, data: bytes) -> None:
        if not self._headers_done:
            start = max(0, len(self._buf) - 3)  # a slow drip must not rescan the whole head
            self._buf += data
            end = self._buf.find(b"\r\n\r\n", start)
            if end < 0:
                if len(self._buf) > self._max_header:
                    raise CheckError(
                        ErrorCode.PROTOCOL, f"response headers exceed {self._max_header} bytes"
                    )
                return
            if end > self._max_header:
                raise CheckError(
                    ErrorCode.PROTOCOL, f"response headers exceed {self._max_header} bytes"
                )
            head, rest = bytes(self._buf[:end]), bytes(self._buf[end + 4 :])
            self._buf.clear()
            if self._parse_head(head):  # 1xx interim response: the real one follows
                if rest:
                    self._feed(rest)
                return
            self._headers_done = True
            data = rest
            if self._mode == "none":
                self._finish()
                return
        if data:
            self._body(data)

    def _parse_head(self, head: bytes) -> bool:
        """Parse status line + headers. Returns True for a 1xx interim response."""
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0") or not parts[1].isdigit():
            raise CheckError(ErrorCode.PROTOCOL, f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(parts[1])
        if not 100 <= status <= 599 or len(parts[1]) != 3:
            raise CheckError(ErrorCode.PROTOCOL, f"invalid status code {parts[1][:10]!r}")
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip() or b" " in name:
                raise CheckError(ErrorCode.PROTOCOL, f"malformed header line {line[:80]!r}")
            headers.append((name, value.strip()))
        if status < 200:
            return True
        self.status, self.headers = status, headers
        lengths = {v for k, v in headers if k.lower() == b"content-length"}
        te = b",".join(v for k, v in headers if k.lower() == b"transfer-encoding").lower()
        if self._head or status in _NO_BODY_STATUS:
            self._mode = "none"
        elif te:
            if not te.endswith(b"chunked"):
                self._mode = "close"
            else:
                self._mode = "chunked"
        elif lengths:
            if len(lengths) != 1 or not next(iter(lengths)).isdigit():
                raise CheckError(ErrorCode.PROTOCOL, f"invalid Content-Length {sorted(lengths)!r}")
            self._remaining = int(next(iter(lengths)))
            self._mode = "length" if self._remaining else "none"
        else:
            self._mode = "close"
        return False

    def _keep(self, data: bytes | bytearray) -> bool:
        """Store body bytes up to the cap; False once the cap is reached (stop reading)."""
        room = self._keep_body - len(self.body)
        if room > 0:
            self.body += data[:room]
        self.body_size += len(data)
        if self.body_size > self._max_body:
            self.truncated = True
            self._finish()
            return False
        return True

    def _body(self, data: bytes) -> None:
        if self._mode == "length":
            take = data[: self._remaining]
            self._remaining -= len(take)
            if self._keep(take) and self._remaining == 0:
                self._finish()
        elif self._mode == "close":
            self._keep(data)
        else:
            self._buf += data
            self._chunks()

    def _chunks(self) -> None:
        buf = self._buf
        while not self.done.done():
            if self._chunk_state == "size":
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > 1024:
                        raise CheckError(ErrorCode.PROTOCOL, "chunk size line too long")
                    return
                size_text = bytes(buf[:end]).split(b";", 1)[0].strip()
                try:
                    self._remaining = int(size_text, 16)
                except ValueError:
                    raise CheckError(
                        ErrorCode.PROTOCOL, f"bad chunk size {size_text[:20]!r}"
                    ) from None
                del buf[: end + 2]
                self._chunk_state = "data" if self._remaining else "trailers"
            elif self._chunk_state == "data":
                if not buf:
                    return
                take = buf[: self._remaining]
                del buf[: len(take)]
                self._remaining -= len(take)
                if not self._keep(take):
                    return
                if self._remaining == 0:
                    self._chunk_state = "crlf"
            elif self._chunk_state == "crlf":
                if len(buf) < 2:
                    return
                if buf[:2] != b"\r\n":
                    raise CheckError(ErrorCode.PROTOCOL, "chunk not followed by CRLF")
                del buf[:2]
                self._chunk_state = "size"
            else:  # trailers: lines until an empty one
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > self._max_header:
                        raise CheckError(ErrorCode.PROTOCOL, "chunked trailers too long")
                    return
                del buf[: end + 2]
                if end == 0:
                    self._finish()


def _request_bytes(hop: Hop) -> bytes:
    url = hop.url
    target = url.raw_path or b"/"
    lines = [hop.method.encode() + b" " + target + b" HTTP/1.1"]
    lines += [k.encode("latin-1") + b": " + v.encode("latin-1") for k, v in hop.headers]
    if hop.body is not None:
        lines.append(b"Content-Length: " + str(len(hop.body)).encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + (hop.body or b"")


async def fetch_lean(
    ctx: CheckContext, hop: Hop, progress: Progress, keep_body: int | None = None
) -> Fetched:
    loop = asyncio.get_running_loop()
    proto = _ResponseProtocol(
        hop.method == "HEAD", ctx.max_header_bytes, ctx.max_body_bytes, progress, keep_body
    )
    port = hop.url.port or (443 if hop.url.scheme == "https" else 80)
    transport: asyncio.BaseTransport | None = None
    try:
        progress.phase, mark = "connect", time.perf_counter()
        transport, _ = await loop.create_connection(lambda: proto, str(hop.ip), port)
        progress.add("connect", progress.ms_since(mark))
        peercert = None
        if hop.url.scheme == "https":
            progress.phase, mark = "tls", time.perf_counter()
            tls = await loop.start_tls(
                transport, proto, ctx.ssl_context, server_hostname=hop.url.host
            )
            if tls is None:
                raise CheckError(ErrorCode.TLS, "connection closed during the TLS handshake")
            transport = proto.transport = tls
            progress.add("tls", progress.ms_since(mark))
            peercert = tls.get_extra_info("peercert")
        progress.phase, mark = "request", time.perf_counter()
        transport.write(_request_bytes(hop))  # type: ignore[attr-defined]
        progress.phase = "response"
        await proto.done
        progress.add("ttfb", (proto.first_byte - mark) * 1000)
        return Fetched(
            status=proto.status,
            headers=httpx.Headers(proto.headers),
            body=bytes(proto.body),
            truncated=proto.truncated,
            cert_days_left=cert_days_left(None, peercert),
        )
    except (OSError, ssl.SSLError, CheckError) as exc:
        raise classify(exc, progress.phase) from exc
    finally:
        if transport is not None:
            transport.abort()
