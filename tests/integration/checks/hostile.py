"""Real local servers that misbehave on purpose, for the checks' integration tests.

One asyncio loop in a background thread serves plain HTTP and several TLS listeners on
127.0.0.1. Each path is one behaviour (see ROUTES); bytes written per path are counted so a
test can prove the prober stopped reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gzip
import json
import ssl
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trustme

Writer = asyncio.StreamWriter
CHUNK = b"x" * 65536


async def _send(w: Writer, status: str, body: bytes = b"", headers: tuple[str, ...] = ()) -> None:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close", *headers]
    w.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    await w.drain()


@dataclass
class HostileServer:
    port: int = 0
    tls_ports: dict[str, int] = field(default_factory=dict)
    ca_pem: str = ""
    written: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def tls_url(self, flavour: str, path: str = "/ok", host: str = "localhost") -> str:
        return f"https://{host}:{self.tls_ports[flavour]}{path}"

    # -- request handling
    async def _handle(self, reader: asyncio.StreamReader, w: Writer) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = b""
            if "content-length" in headers:
                body = await reader.readexactly(int(headers["content-length"]))
            self.requests.append((method, path, headers, body))
            handler = ROUTES.get(path.split("?")[0], _not_found)
            await handler(self, method, headers, body, w)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            w.transport.abort()

    async def stream(self, path: str, w: Writer, data: bytes, limit: int = 2**31) -> None:
        """Write data repeatedly until the client goes away (or limit bytes)."""
        while self.written[path] < limit:
            w.write(data)
            self.written[path] += len(data)
            await w.drain()

    # -- lifecycle
    def start(self) -> HostileServer:
        ca = trustme.CA()
        ca_file = ca.cert_pem.bytes().decode()
        self.ca_pem = ca_file
        now = dt.datetime.now(dt.UTC)
        self.expiring_not_after = (now + dt.timedelta(days=5)).timestamp()
        leaves = {
            "good": ca.issue_cert("localhost", "127.0.0.1"),
            "expiring": ca.issue_cert(
                "localhost", "127.0.0.1", not_after=now + dt.timedelta(days=5)
            ),
            "expired": ca.issue_cert(
                "localhost",
                "127.0.0.1",
                not_before=now - dt.timedelta(days=30),
                not_after=now - dt.timedelta(days=2),
            ),
            "wrong_name": ca.issue_cert("other.example"),
            "untrusted": trustme.CA().issue_cert("localhost", "127.0.0.1"),
        }
        ready = threading.Event()

        async def main() -> None:
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            for name, leaf in leaves.items():
                ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                leaf.configure_cert(ctx)
                tls_server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=ctx)
                self.tls_ports[name] = tls_server.sockets[0].getsockname()[1]

            # A "TLS" port that answers the ClientHello with plain HTTP, as a web server would.
            async def plain_http(reader: asyncio.StreamReader, w: Writer) -> None:
                with contextlib.suppress(ConnectionError):
                    await reader.read(1024)
                    await _send(w, "400 Bad Request", b"plain HTTP port")
                w.transport.abort()

            plain = await asyncio.start_server(plain_http, "127.0.0.1", 0)
            self.tls_ports["plaintext"] = plain.sockets[0].getsockname()[1]
            ready.set()
            await asyncio.Event().wait()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            self._task = loop.create_task(main())
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(self._task)
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="hostile-server", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("hostile server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        if self._thread is not None:
            self._thread.join(5)


Handler = Callable[[HostileServer, str, dict[str, str], bytes, Writer], Awaitable[None]]


async def _not_found(srv, method, headers, body, w):
    await _send(w, "404 Not Found", b"no such path")


async def _ok(srv, method, headers, body, w):
    await _send(w, "200 OK", b"hello world", ("Content-Type: text/plain; charset=utf-8",))


async def _echo(srv, method, headers, body, w):
    doc = {
        "method": method,
        "host": headers.get("host"),
        "body": body.decode(),
        "user_agent": headers.get("user-agent"),
        "x_token": headers.get("x-token"),
    }
    await _send(w, "200 OK", json.dumps(doc).encode(), ("Content-Type: application/json",))


async def _json(srv, method, headers, body, w):
    doc = {"status": "ok", "ready": True, "count": 3, "items": [{"id": 7, "name": "a b"}]}
    await _send(w, "200 OK", json.dumps(doc).encode(), ("Content-Type: application/json",))


async def _status_503(srv, method, headers, body, w):
    await _send(w, "503 Service Unavailable", b"down for maintenance")


async def _huge(srv, method, headers, body, w):
    w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\n")  # 10 GiB promised
    await srv.stream("/huge", w, CHUNK)


async def _endless_chunked(srv, method, headers, body, w):
    w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    await srv.stream("/endless-chunked", w, b"10000\r\n" + CHUNK + b"\r\n")


async def _endless_close(srv, method, headers, body, w):
    w.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    await srv.stream("/endless-close", w, CHUNK)


async def _chunked(srv, method, headers, body, w):
    w.write(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"6;ext=1\r\nhello \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    await w.drain()


async def _drip(srv, method, headers, body, w):
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"." * 100000:
        w.write(bytes([byte]))
        await w.drain()
        await asyncio.sleep(0.05)


async def _stall(srv, method, headers, body, w):
    await asyncio.sleep(3600)


async def _loop(srv, method, headers, body, w):
    await _send(w, "302 Found", headers=("Location: /loop",))


async def _redirect_chain(srv, method, headers, body, w):
    await _send(w, "301 Moved Permanently", headers=("Location: /ok",))


async def _see_other(srv, method, headers, body, w):
    await _send(w, "303 See Other", headers=("Location: /echo",))


async def _to_metadata(srv, method, headers, body, w):
    await _send(w, "302 Found", headers=("Location: http://169.254.169.254/latest/meta-data/",))


async def _to_private(srv, method, headers, body, w):
    await _send(w, "307 Temporary Redirect", headers=("Location: http://10.1.2.3:8080/",))


async def _to_mapped(srv, method, headers, body, w):
    await _send(w, "302 Found", headers=("Location: http://[::ffff:192.168.0.1]/",))


async def _to_file(srv, method, headers, body, w):
    await _send(w, "302 Found", headers=("Location: file:///etc/passwd",))


async def _garbage(srv, method, headers, body, w):
    w.write(bytes(range(256)) * 4)
    await w.drain()


async def _ssh_banner(srv, method, headers, body, w):
    w.write(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    await w.drain()


async def _close(srv, method, headers, body, w):
    return  # connection aborted without a byte


async def _header_flood(srv, method, headers, body, w):
    w.write(b"HTTP/1.1 200 OK\r\n")
    await srv.stream("/header-flood", w, b"X-Flood: " + b"a" * 1000 + b"\r\n", limit=50_000_000)


async def _bad_length(srv, method, headers, body, w):
    w.write(b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nhello")
    await w.drain()


async def _short_body(srv, method, headers, body, w):
    w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-this")
    await w.drain()


GZIP_BOMB = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB -> ~64 KiB


async def _gzip_bomb(srv, method, headers, body, w):
    await _send(w, "200 OK", GZIP_BOMB, ("Content-Encoding: gzip",))


async def _gzip_ok(srv, method, headers, body, w):
    await _send(w, "200 OK", gzip.compress(b"compressed hello"), ("Content-Encoding: gzip",))


async def _continue_then_ok(srv, method, headers, body, w):
    w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    await _send(w, "200 OK", b"after continue")


async def _nul_body(srv, method, headers, body, w):
    await _send(w, "500 Internal Server Error", b"bad\0bytes\xff\xfe")


async def _negative_chunk(srv, method, headers, body, w):
    # A chunk size int(..., 16) accepts but a parser cannot advance on; then the server waits.
    w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nabc")
    await w.drain()
    await asyncio.sleep(3600)


async def _interim_flood(srv, method, headers, body, w):
    await srv.stream("/interim-flood", w, b"HTTP/1.1 100 Continue\r\n\r\n" * 1000,
                     limit=50_000_000)


async def _deep_json(srv, method, headers, body, w):
    await _send(w, "200 OK", b"[" * 200_000, ("Content-Type: application/json",))


async def _charset(srv, method, headers, body, w):
    charset = srv.requests[-1][1].partition("?cs=")[2]
    await _send(w, "200 OK", b"hello \xff\xfe world",
                (f"Content-Type: text/plain; charset={charset}",))


async def _to_bad_idn(srv, method, headers, body, w):
    await _send(w, "302 Found", headers=("Location: http://xn--a.example/",))


async def _auth(srv, method, headers, body, w):
    if headers.get("authorization") == "Basic dXNlcjpzM2NyZXQ=":  # user:s3cret
        await _send(w, "200 OK", b"welcome")
    else:
        await _send(w, "401 Unauthorized", b"who are you", ('WWW-Authenticate: Basic realm="x"',))


async def _auth_elsewhere(srv, method, headers, body, w):
    await _send(w, "302 Found", headers=(f"Location: http://localhost:{srv.port}/auth",))


async def _early_hints(srv, method, headers, body, w):
    w.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
    await _send(w, "200 OK", b"after hints")


ROUTES: dict[str, Handler] = {
    "/negative-chunk": _negative_chunk,
    "/interim-flood": _interim_flood,
    "/deep-json": _deep_json,
    "/charset": _charset,
    "/to-bad-idn": _to_bad_idn,
    "/auth": _auth,
    "/auth-elsewhere": _auth_elsewhere,
    "/early-hints": _early_hints,
    "/ok": _ok,
    "/echo": _echo,
    "/json": _json,
    "/503": _status_503,
    "/huge": _huge,
    "/endless-chunked": _endless_chunked,
    "/endless-close": _endless_close,
    "/chunked": _chunked,
    "/drip": _drip,
    "/stall": _stall,
    "/loop": _loop,
    "/redirect-ok": _redirect_chain,
    "/see-other": _see_other,
    "/to-metadata": _to_metadata,
    "/to-private": _to_private,
    "/to-mapped": _to_mapped,
    "/to-file": _to_file,
    "/garbage": _garbage,
    "/ssh": _ssh_banner,
    "/close": _close,
    "/header-flood": _header_flood,
    "/bad-length": _bad_length,
    "/short-body": _short_body,
    "/gzip-bomb": _gzip_bomb,
    "/gzip": _gzip_ok,
    "/continue": _continue_then_ok,
    "/nul": _nul_body,
}
