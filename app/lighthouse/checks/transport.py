"""The one HTTP/1.1 transport for every outbound HTTP request: checks, redirects, alert channels.

It connects to the SSRF-vetted IP of a Hop (never re-resolving the name), does TLS with the
shared context and the original name as SNI, sends one request and parses the response with
httptools (llhttp, the parser Node.js uses; fuzzed upstream) under hard limits: header bytes,
interim (1xx) responses, body read cap. One parser for every caller means one classification
of a malformed response.

httpx through httpcore and anyio spends most of a plain probe in layers a probe does not need;
a raw asyncio Protocol is why the prober beats blackbox_exporter (docs/benchmarks.md).

Connections: one-shot by default (`Connection: close`, then abort; connect and TLS measured on
every check). Keep-alive monitors and alert channels reuse an idle connection per
(scheme, host, port, vetted IP): a TLS session verified for one name is never reused for
another. A reused connection that the server closed while idle is retried once on a new one.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import OrderedDict

import httptools
import httpx

from lighthouse.checks.context import CheckContext
from lighthouse.checks.errors import CheckError, ErrorCode
from lighthouse.checks.fetch import Fetched, Hop, classify, port_of
from lighthouse.checks.progress import Progress, cert_expiry

MAX_INTERIM = 8  # 1xx responses accepted before the final one; more is a flood
KEEPALIVE_HOSTS = 256  # idle connections kept; least recently used closed first
KEEPALIVE_EXPIRY_S = 30.0  # an idle connection older than this is closed, not reused


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class _Exchange:
    """One response on a connection: httptools callbacks, limits, the outcome future."""

    def __init__(
        self, head_request: bool, max_header: int, max_body: int, keep_body: int,
        progress: Progress,
    ) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # The check may stop awaiting (deadline, TLS failure) before the connection is lost;
        # the error it ends with is reported by the check, not as "never retrieved" noise.
        self.done.add_done_callback(_retrieve)
        self.parser = httptools.HttpResponseParser(self)
        self.progress = progress
        self.first_byte = 0.0  # perf_counter of the first response byte
        self._head = head_request
        self._max_header = max_header
        self._max_body = max_body  # read at most this much, then stop
        # Keep only this much in memory (the rest is read and counted): checks without a body
        # assertion need just the snippet, so 1,000 hostile targets cost 1 MiB, not 1 GiB.
        self._keep_body = min(keep_body, max_body)
        self.fed = 0  # bytes received before the final response's headers completed
        self._header_bytes = 0
        self.interim = 0
        self.headers_done = False
        self.framed = False  # Content-Length or chunked: EOF before the end is an error
        self.complete = False  # the final response ended (not by EOF, not by the cap)
        self.keep_alive = False  # the server lets the connection carry another request
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.body_size = 0
        self.truncated = False

    # -- bytes in
    def feed(self, data: bytes) -> None:
        if self.done.done():
            return
        if not self.first_byte:
            self.first_byte = time.perf_counter()
            self.progress.phase = "body"
        try:
            if not self.headers_done:
                self.fed += len(data)
            self.parser.feed_data(data)
            if not self.headers_done and self.fed > self._max_header:
                # httptools buffers a partial header line itself; bound what it may hold.
                raise CheckError(
                    ErrorCode.PROTOCOL, f"response headers exceed {self._max_header} bytes"
                )
        except httptools.HttpParserCallbackError as exc:
            # Our callback raised: a CheckError is the verdict; anything else is our bug and
            # must surface as such (run_check reports it as `internal`), not as `protocol`.
            self.finish(exc.__context__ or exc)
        except httptools.HttpParserUpgrade:
            self.finish(CheckError(ErrorCode.PROTOCOL, "unexpected protocol upgrade (HTTP 101)"))
        except httptools.HttpParserError as exc:
            where = "body" if self.headers_done else "status line or headers"
            self.finish(CheckError(ErrorCode.PROTOCOL, f"malformed HTTP {where}: {exc}"))
        except CheckError as exc:
            self.finish(exc)

    def end_of_stream(self) -> None:
        """The server closed (EOF or a clean close): decide whether the response is whole."""
        if self.done.done():
            return
        if self.headers_done and not self.framed:
            self.finish()  # close-delimited body: EOF is its end
        elif not self.headers_done and not self.fed:
            self.finish(
                CheckError(ErrorCode.RESET, "server closed the connection without a response")
            )
        elif not self.headers_done:
            self.finish(
                CheckError(ErrorCode.PROTOCOL, "connection closed inside the response headers")
            )
        else:
            self.finish(CheckError(ErrorCode.PROTOCOL, "connection closed before the body ended"))

    def finish(self, exc: BaseException | None = None) -> None:
        if self.done.done():
            return
        if exc is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(exc)

    @property
    def reusable(self) -> bool:
        return self.complete and not self.truncated and self.keep_alive

    # -- httptools callbacks (llhttp calls these while feed_data runs)
    def on_message_begin(self) -> None:
        self.headers = []
        self._header_bytes = 0

    def on_status(self, text: bytes) -> None:
        self._count(len(text) + 16)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        self.headers.append((name, value))

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self._max_header:
            raise CheckError(
                ErrorCode.PROTOCOL, f"response headers exceed {self._max_header} bytes"
            )

    def on_headers_complete(self) -> None:
        if self.done.done():
            return
        status = self.parser.get_status_code()
        if not 100 <= status <= 599:
            raise CheckError(ErrorCode.PROTOCOL, f"invalid status code {status}")
        if status < 200:  # interim (100 Continue, 103 Early Hints): the final one follows
            self.interim += 1
            if self.interim > MAX_INTERIM:
                raise CheckError(
                    ErrorCode.PROTOCOL, f"more than {MAX_INTERIM} interim (1xx) responses"
                )
            return
        self.headers_done = True
        self.status = status
        names = {name.lower() for name, _ in self.headers}
        self.framed = b"content-length" in names or b"transfer-encoding" in names
        if self._head:  # llhttp cannot be told the request was HEAD: no body follows
            self.keep_alive = self.parser.should_keep_alive()
            self.complete = True
            self.finish()

    def on_body(self, data: bytes) -> None:
        if self.done.done():
            return
        room = self._keep_body - len(self.body)
        if room > 0:
            self.body += data[:room]
        self.body_size += len(data)
        if self.body_size > self._max_body:
            self.truncated = True
            self.finish()

    def on_message_complete(self) -> None:
        if self.done.done() or not self.headers_done:
            return  # an interim response ended, or we already stopped
        self.keep_alive = self.parser.should_keep_alive()  # valid only inside this callback
        self.complete = True
        self.finish()


class _Connection(asyncio.Protocol):
    """A TCP (then maybe TLS) connection that carries one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.exchange: _Exchange | None = None
        self.closed = False
        self.idle_since = 0.0
        self.peercert: dict | None = None
        self.bytes_in = 0  # received during the current exchange

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if self.exchange is None:  # bytes nobody asked for on an idle connection
            self.close()
            return
        self.exchange.feed(data)

    def eof_received(self) -> bool:
        self.closed = True
        if self.exchange is not None:
            self.exchange.end_of_stream()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.exchange is not None:
            if exc is not None:
                self.exchange.finish(exc)
            self.exchange.end_of_stream()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


PoolKey = tuple[str, str, int, str]


class ConnectionPool:
    """Idle keep-alive connections, one per key, bounded in number and age."""

    def __init__(self) -> None:
        self._idle: OrderedDict[PoolKey, _Connection] = OrderedDict()

    def take(self, key: PoolKey) -> _Connection | None:
        conn = self._idle.pop(key, None)
        if conn is None:
            return None
        if conn.closed or time.monotonic() - conn.idle_since > KEEPALIVE_EXPIRY_S:
            conn.close()
            return None
        return conn

    def put(self, key: PoolKey, conn: _Connection) -> None:
        conn.idle_since = time.monotonic()
        old = self._idle.pop(key, None)
        if old is not None:
            old.close()
        self._idle[key] = conn
        while len(self._idle) > KEEPALIVE_HOSTS:
            _, oldest = self._idle.popitem(last=False)
            oldest.close()

    def __len__(self) -> int:
        return len(self._idle)

    async def aclose(self) -> None:
        idle, self._idle = list(self._idle.values()), OrderedDict()
        for conn in idle:
            conn.close()


def _pool(ctx: CheckContext) -> ConnectionPool:
    pool = ctx._state.get("http_pool")
    if pool is None:
        pool = ctx._state["http_pool"] = ConnectionPool()
    return pool


def request_bytes(hop: Hop, keepalive: bool) -> bytes:
    target = hop.url.raw_path or b"/"
    lines = [hop.method.encode() + b" " + target + b" HTTP/1.1"]
    lines += [k.encode("latin-1") + b": " + v.encode("latin-1") for k, v in hop.headers]
    if hop.body is not None:
        lines.append(b"Content-Length: " + str(len(hop.body)).encode())
    if not keepalive:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + (hop.body or b"")


async def _connect(ctx: CheckContext, hop: Hop, port: int, progress: Progress) -> _Connection:
    loop = asyncio.get_running_loop()
    conn = _Connection()
    try:
        progress.phase, mark = "connect", time.perf_counter()
        await loop.create_connection(lambda: conn, str(hop.ip), port)
        progress.add("connect", progress.ms_since(mark))
        if hop.url.scheme == "https":
            progress.phase, mark = "tls", time.perf_counter()
            tls = await loop.start_tls(
                conn.transport,  # type: ignore[arg-type]
                conn,
                ctx.ssl_context,
                server_hostname=hop.url.raw_host.decode("ascii"),  # the A-label for SNI
            )
            if tls is None:
                raise CheckError(ErrorCode.TLS, "connection closed during the TLS handshake")
            conn.transport = tls
            progress.add("tls", progress.ms_since(mark))
            conn.peercert = tls.get_extra_info("peercert")
    except BaseException:
        conn.close()
        raise
    return conn


async def _exchange(
    ctx: CheckContext, conn: _Connection, hop: Hop, progress: Progress, keep_body: int,
    keepalive: bool,
) -> _Exchange:
    ex = _Exchange(
        hop.method == "HEAD", ctx.max_header_bytes, ctx.max_body_bytes, keep_body, progress
    )
    conn.exchange, conn.bytes_in = ex, 0
    try:
        progress.phase, mark = "request", time.perf_counter()
        if conn.closed or conn.transport is None:
            raise CheckError(ErrorCode.RESET, "connection closed before the request was sent")
        conn.transport.write(request_bytes(hop, keepalive))
        progress.phase = "response"
        await ex.done
        progress.add("ttfb", (ex.first_byte - mark) * 1000)
        return ex
    finally:
        conn.exchange = None


async def fetch(
    ctx: CheckContext, hop: Hop, progress: Progress, keep_body: int | None = None,
    keepalive: bool = False,
) -> Fetched:
    """One request on hop.ip; raises CheckError. keep_body: bytes of body kept in memory."""
    port = port_of(hop.url)
    keep = ctx.max_body_bytes if keep_body is None else keep_body
    key: PoolKey = (hop.url.scheme, hop.url.raw_host.decode("ascii"), port, str(hop.ip))
    pool = _pool(ctx) if keepalive else None
    conn = pool.take(key) if pool is not None else None
    reused = conn is not None
    try:
        while True:
            if conn is None:
                conn = await _connect(ctx, hop, port, progress)
            try:
                ex = await _exchange(ctx, conn, hop, progress, keep, keepalive)
                break
            except (CheckError, OSError) as exc:
                # The server may close an idle keep-alive connection just as we reuse it;
                # that is no verdict on the target: once, on a fresh connection.
                if reused and not conn.bytes_in and _is_close(exc):
                    conn.close()
                    conn, reused = None, False
                    continue
                raise
        days, expires_at = cert_expiry(conn.peercert)
        fetched = Fetched(
            status=ex.status,
            headers=httpx.Headers(ex.headers),
            body=bytes(ex.body),
            truncated=ex.truncated,
            cert_days_left=days,
            cert_expires_at=expires_at,
        )
        if pool is not None and ex.reusable and not conn.closed:
            pool.put(key, conn)
            conn = None
        return fetched
    except (OSError, ssl.SSLError, CheckError) as exc:
        raise classify(exc, progress.phase) from exc
    finally:
        if conn is not None:
            conn.close()


def _is_close(exc: BaseException) -> bool:
    if isinstance(exc, CheckError):
        return exc.code is ErrorCode.RESET
    return isinstance(exc, ConnectionResetError | BrokenPipeError)
