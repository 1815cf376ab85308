"""TLS certificate check: handshake with verification, days until the certificate expires."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from typing import Any

from lighthouse.checks.context import CheckContext
from lighthouse.checks.errors import CheckError, ErrorCode
from lighthouse.checks.fetch import classify
from lighthouse.checks.progress import Progress, cert_expiry
from lighthouse.checks.ssrf import parse_ip
from lighthouse.checks.tcp import parse_host_port, parse_timeout, vetted_ip


@dataclass(slots=True)
class TlsConfig:
    host: str
    port: int
    warn_days: int
    timeout_s: float


def parse_tls_config(cfg: dict[str, Any], ctx: CheckContext) -> TlsConfig:
    host, port = parse_host_port(cfg, default_port=443)
    warn = cfg.get("warn_days", 14)
    if isinstance(warn, bool) or not isinstance(warn, int) or not 0 <= warn <= 3650:
        raise CheckError(ErrorCode.CONFIG, f"warn_days: expected 0-3650, got {warn!r}")
    return TlsConfig(host, port, warn, parse_timeout(cfg, ctx))


async def check_tls(cfg: TlsConfig, ctx: CheckContext, progress: Progress) -> None:
    ip = await vetted_ip(cfg.host, cfg.port, ctx, progress)
    progress.phase = "connect"
    mark = time.perf_counter()
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await loop.create_connection(asyncio.Protocol, str(ip), cfg.port)
    except OSError as exc:
        raise classify(exc, "connect") from exc
    progress.add("connect", progress.ms_since(mark))
    progress.phase, mark = "tls", time.perf_counter()
    try:
        # SNI carries the name the operator wrote; an IP literal is matched against IP SANs.
        server_hostname = cfg.host if parse_ip(cfg.host) is None else str(ip)
        tls_transport = await loop.start_tls(
            transport, transport.get_protocol(), ctx.ssl_context, server_hostname=server_hostname
        )
    except (OSError, ssl.SSLError) as exc:
        transport.abort()
        raise classify(exc, "tls") from exc
    if tls_transport is None:
        transport.abort()
        raise CheckError(ErrorCode.TLS, "connection closed during the TLS handshake")
    progress.add("tls", progress.ms_since(mark))
    days, expires_at = cert_expiry(tls_transport.get_extra_info("peercert"))
    tls_transport.abort()
    progress.cert_days_left, progress.cert_expires_at = days, expires_at
    if days is None:
        raise CheckError(ErrorCode.TLS, "peer sent no certificate")
    if days < cfg.warn_days:
        raise CheckError(
            ErrorCode.CERT_EXPIRING,
            f"certificate expires in {days} days (warn_days={cfg.warn_days})",
        )
