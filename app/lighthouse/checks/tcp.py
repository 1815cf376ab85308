"""TCP connect check: resolve (SSRF-vetted), connect, close."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import idna

from lighthouse.checks.context import CheckContext
from lighthouse.checks.errors import CheckError, ErrorCode
from lighthouse.checks.fetch import classify
from lighthouse.checks.progress import Progress
from lighthouse.checks.ssrf import IPAddress, resolve_vetted


@dataclass(slots=True)
class TcpConfig:
    host: str
    port: int
    timeout_s: float


def parse_host_port(cfg: dict[str, Any], default_port: int | None = None) -> tuple[str, int]:
    host = cfg.get("host")
    if not isinstance(host, str) or not host or any(c.isspace() for c in host):
        raise CheckError(ErrorCode.CONFIG, f"host: expected a host name or IP, got {host!r}")
    port = cfg.get("port", default_port)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise CheckError(ErrorCode.CONFIG, f"port: expected 1-65535, got {port!r}")
    host = host.strip("[]")
    if not host.isascii():  # resolver and SNI need the A-label (IDNA 2008, as httpx uses)
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise CheckError(ErrorCode.CONFIG, f"host: invalid international name: {exc}") from None
    return host, port


def parse_timeout(cfg: dict[str, Any], ctx: CheckContext) -> float:
    value = cfg.get("timeout_s", ctx.default_timeout_s)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (0.05 <= value <= ctx.max_timeout_s)
    ):
        raise CheckError(
            ErrorCode.CONFIG, f"timeout_s: expected 0.05-{ctx.max_timeout_s}, got {value!r}"
        )
    return float(value)


def parse_tcp_config(cfg: dict[str, Any], ctx: CheckContext) -> TcpConfig:
    host, port = parse_host_port(cfg)
    return TcpConfig(host, port, parse_timeout(cfg, ctx))


async def vetted_ip(host: str, port: int, ctx: CheckContext, progress: Progress) -> IPAddress:
    """The dns phase: resolve host and vet every answer (SSRF); the address to connect to."""
    progress.phase = "dns"
    ip, dns_ms = await resolve_vetted(host, port, ctx.ssrf, ctx.prefer_ipv6, ctx.dns_executor())
    progress.add("dns", dns_ms)
    return ip


async def open_vetted(
    host: str, port: int, ctx: CheckContext, progress: Progress
) -> tuple[IPAddress, asyncio.StreamWriter]:
    """Resolve + vet host, then connect to the vetted address. Returns (ip, writer)."""
    ip = await vetted_ip(host, port, ctx, progress)
    progress.phase = "connect"
    mark = time.perf_counter()
    try:
        _reader, writer = await asyncio.open_connection(str(ip), port, limit=1024)
    except OSError as exc:
        raise classify(exc, "connect") from exc
    progress.add("connect", progress.ms_since(mark))
    return ip, writer


async def check_tcp(cfg: TcpConfig, ctx: CheckContext, progress: Progress) -> None:
    _ip, writer = await open_vetted(cfg.host, cfg.port, ctx, progress)
    writer.transport.abort()  # no FIN/TIME_WAIT handshake to wait for
