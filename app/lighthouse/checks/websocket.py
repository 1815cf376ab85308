"""WebSocket check: connect (ws/wss), optionally send a message and assert on the reply.

The name is resolved and vetted by the SSRF guard like every target; we open the TCP socket
to that vetted address ourselves and hand it to the `websockets` client, which does TLS (SNI and
certificate checked against the URL's host) and the upgrade on it, so no second lookup can
swap the address. Redirects are refused: a socket given to the client cannot follow one, and a
monitor should name the endpoint it means.

Timings: dns, connect, tls (wss), upgrade (the HTTP 101 exchange), first_message (from the send,
or from the upgrade when nothing is sent, to the first message received).
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import idna
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from lighthouse.checks import assertions
from lighthouse.checks.context import CheckContext
from lighthouse.checks.errors import CheckError, ErrorCode
from lighthouse.checks.fetch import classify
from lighthouse.checks.keys import reject_unknown, text
from lighthouse.checks.progress import Progress, cert_expiry
from lighthouse.checks.tcp import parse_timeout, vetted_ip

KEYS = ("url", "headers", "send", "expect", "json_path", "json_expected", "subprotocols")
_REDIRECTS = frozenset({300, 301, 302, 303, 307, 308})


@dataclass(slots=True)
class WebsocketConfig:
    url: str
    host: str  # A-label, for DNS and SNI
    port: int
    secure: bool
    headers: list[tuple[str, str]]
    subprotocols: list[str] | None
    send: str | None
    expect: str | None
    json_path: str | None
    json_expected: Any
    timeout_s: float


def _url(cfg: dict[str, Any]) -> tuple[str, str, int, bool]:
    raw = text(cfg, "url", limit=2048)
    assert raw is not None
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise CheckError(ErrorCode.CONFIG, f"url: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss") or not parts.hostname:
        raise CheckError(ErrorCode.CONFIG, f"url: expected ws:// or wss:// and a host: {raw!r}")
    if parts.username or parts.password:
        raise CheckError(ErrorCode.CONFIG, "url: credentials in the URL; use headers instead")
    host = parts.hostname
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise CheckError(ErrorCode.CONFIG, f"url: invalid international name: {exc}") from None
    return raw, host, port or (443 if scheme == "wss" else 80), scheme == "wss"


def parse_websocket_config(cfg: dict[str, Any], ctx: CheckContext) -> WebsocketConfig:
    reject_unknown(cfg, KEYS, "websocket")
    url, host, port, secure = _url(cfg)
    raw_headers = cfg.get("headers") or {}
    if not isinstance(raw_headers, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in raw_headers.items()
    ):
        raise CheckError(ErrorCode.CONFIG, "headers: expected a mapping of name to string")
    headers = [(k, v) for k, v in raw_headers.items() if k.lower() != "host"]
    for name, value in headers:
        if any(c in name + value for c in "\r\n\x00") or not value.isascii():
            raise CheckError(ErrorCode.CONFIG, f"headers: invalid header {name[:60]!r}")
    protocols = cfg.get("subprotocols")
    if protocols is not None and (
        not isinstance(protocols, list) or not all(isinstance(p, str) and p for p in protocols)
    ):
        raise CheckError(ErrorCode.CONFIG, "subprotocols: expected a list of names")
    json_path = cfg.get("json_path")
    if json_path is not None:
        if not isinstance(json_path, str):
            raise CheckError(ErrorCode.CONFIG, "json_path: expected a string")
        assertions.parse_json_path(json_path)
    elif "json_expected" in cfg:
        raise CheckError(ErrorCode.CONFIG, "json_expected: needs json_path")
    return WebsocketConfig(
        url,
        host,
        port,
        secure,
        headers,
        protocols,
        text(cfg, "send", required=False, limit=65536),
        text(cfg, "expect", required=False, limit=10_000),
        json_path,
        cfg.get("json_expected"),
        parse_timeout(cfg, ctx),
    )


class _NoRedirects(connect):
    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc  # the 30x surfaces as InvalidStatus and is reported as such


class _Timed(ClientConnection):
    """Marks when the transport is up, i.e. after the TLS handshake (asyncio calls
    connection_made only once it is done)."""

    ready_at: float = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.ready_at = time.perf_counter()
        super().connection_made(transport)


async def _socket(cfg: WebsocketConfig, ctx: CheckContext, progress: Progress) -> socket.socket:
    ip = await vetted_ip(cfg.host, cfg.port, ctx, progress)
    progress.phase = "connect"
    mark = time.perf_counter()
    sock = socket.socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (str(ip), cfg.port))
    except BaseException as exc:
        sock.close()
        if isinstance(exc, OSError):
            raise classify(exc, "connect") from exc
        raise
    progress.add("connect", progress.ms_since(mark))
    return sock


def _status_error(exc: InvalidStatus, progress: Progress) -> CheckError:
    status = exc.response.status_code
    progress.http_status = status
    if exc.response.body:
        progress.snippet = bytes(exc.response.body[:1024])
    if status in _REDIRECTS:
        where = str(exc.response.headers.get("Location", "?"))[:200]
        return CheckError(
            ErrorCode.STATUS,
            f"HTTP {status} redirect to {where} refused: websocket checks do not follow "
            "redirects; set url to the endpoint",
        )
    return CheckError(ErrorCode.STATUS, f"HTTP {status} instead of 101 Switching Protocols")


def _assert(cfg: WebsocketConfig, message: str | bytes, ctx: CheckContext,
            progress: Progress) -> None:
    raw = message.encode() if isinstance(message, str) else message
    progress.snippet = raw[: ctx.snippet_bytes]
    body = raw.decode("utf-8", errors="replace")
    if cfg.expect is not None and cfg.expect not in body:
        raise CheckError(ErrorCode.ASSERTION, f"reply does not contain {cfg.expect[:100]!r}")
    if cfg.json_path is not None:
        assertions.check_json(body, cfg.json_path, cfg.json_expected)


async def check_websocket(cfg: WebsocketConfig, ctx: CheckContext, progress: Progress) -> None:
    sock = await _socket(cfg, ctx, progress)
    progress.phase = "tls" if cfg.secure else "upgrade"
    started = time.perf_counter()
    opener = _NoRedirects(
        cfg.url,
        sock=sock,
        ssl=ctx.ssl_context if cfg.secure else None,
        server_hostname=cfg.host if cfg.secure else None,
        additional_headers=cfg.headers,
        subprotocols=cfg.subprotocols,  # type: ignore[arg-type]
        user_agent_header=ctx.user_agent,
        proxy=None,
        compression=None,
        open_timeout=None,  # the check's own deadline bounds everything
        ping_interval=None,
        close_timeout=1,
        max_size=ctx.max_body_bytes,
        create_connection=_Timed,
    )
    try:
        try:
            ws = await opener
        except BaseException:
            sock.close()  # no-op when the transport already closed it; frees it on a timeout
            raise
    except InvalidStatus as exc:
        raise _status_error(exc, progress) from None
    except InvalidHandshake as exc:
        raise CheckError(ErrorCode.PROTOCOL, f"upgrade failed: {exc}") from None
    except OSError as exc:
        raise classify(exc, "tls" if cfg.secure else "upgrade") from exc
    except EOFError:
        raise CheckError(ErrorCode.RESET, "connection closed during the upgrade") from None
    upgraded = time.perf_counter()
    assert isinstance(ws, _Timed)
    try:
        if cfg.secure:
            progress.add("tls", round((ws.ready_at - started) * 1000, 3))
            days, expires = cert_expiry(ws.transport.get_extra_info("peercert"))
            progress.cert_days_left, progress.cert_expires_at = days, expires
        progress.add("upgrade", round((upgraded - (ws.ready_at or started)) * 1000, 3))
        progress.http_status = 101
        if cfg.send is None and cfg.expect is None and cfg.json_path is None:
            return
        progress.phase = "first_message"
        mark = time.perf_counter()
        try:
            if cfg.send is not None:
                await ws.send(cfg.send)
            message = await ws.recv()
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else "none"
            reason = (exc.rcvd.reason if exc.rcvd else "")[:200]
            raise CheckError(
                ErrorCode.RESET, f"closed by the server (code {code} {reason!r}) before a message"
            ) from None
        progress.add("first_message", progress.ms_since(mark))
        _assert(cfg, message, ctx, progress)
    finally:
        await _close(ws)


async def _close(ws: ClientConnection) -> None:
    """A polite close (1000) so the target does not log an aborted connection, bounded; none
    when the check's deadline cancelled us (the check must not outlive it)."""
    task = asyncio.current_task()
    try:
        if task is None or not task.cancelling():
            async with asyncio.timeout(0.5):
                await ws.close()
    except (TimeoutError, OSError, ConnectionClosed):
        pass
    finally:
        ws.transport.abort()

