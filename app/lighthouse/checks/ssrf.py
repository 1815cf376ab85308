"""SSRF guard: which addresses a check may connect to, and DNS resolution that vets them.

Checks resolve names themselves and connect to the vetted IP (keeping the original Host header
and TLS SNI), so a name cannot resolve to a public address when vetted and to a private one when
connected (DNS rebinding). Every redirect hop goes through the same vetting.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial

from lighthouse.checks.errors import CheckError, ErrorCode

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Ranges the stdlib flags do not all cover (or cover only on newer Pythons).
_EXTRA_BLOCKED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # carrier-grade NAT (shared address space)
        "192.0.0.0/24",  # IETF protocol assignments
        "198.18.0.0/15",  # benchmarking
        "64:ff9b:1::/48",  # local-use NAT64
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fec0::/10",  # deprecated site-local
    )
)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64 well-known), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    # IPv4-compatible (deprecated) ::a.b.c.d
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip))
    return None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def blocked_reason(ip: IPAddress) -> str | None:
    """Why connecting to ip is refused by default, or None if it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = blocked_reason(inner)
            return f"embeds {inner} ({reason})" if reason else None
    for flag in (
        "is_loopback",
        "is_link_local",
        "is_private",
        "is_multicast",
        "is_reserved",
        "is_unspecified",
    ):
        if getattr(ip, flag):
            return flag.removeprefix("is_").replace("_", "-")
    if any(ip in net for net in _EXTRA_BLOCKED if net.version == ip.version):
        return "reserved"
    if not ip.is_global:
        return "not global"
    return None


@dataclass(frozen=True, slots=True)
class SsrfPolicy:
    """Refuse non-public addresses unless an operator allow-list (CIDRs) permits them."""

    allow: tuple[IPNetwork, ...] = ()
    enabled: bool = True  # False only for trusted, operator-run one-off checks

    @classmethod
    def from_cidrs(cls, cidrs: Iterable[str], enabled: bool = True) -> SsrfPolicy:
        return cls(tuple(ipaddress.ip_network(c, strict=False) for c in cidrs), enabled)

    def refusal(self, ip: IPAddress) -> str | None:
        """None if ip may be probed, else the reason it may not."""
        if not self.enabled:
            return None
        if any(ip in net for net in self.allow if net.version == ip.version):
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            mapped = ip.ipv4_mapped
            if any(mapped in net for net in self.allow if net.version == 4):
                return None
        return blocked_reason(ip)


@dataclass(slots=True)
class Resolved:
    host: str  # as written in the target
    addresses: list[IPAddress]
    dns_ms: float = 0.0
    literal: bool = field(default=False)  # host was an IP literal (no DNS)


def parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


async def resolve(host: str, port: int, executor: Executor | None = None) -> Resolved:
    """Resolve host to its addresses (IP literals skip DNS). Raises CheckError(DNS).

    getaddrinfo blocks a thread until the resolver answers or gives up (seconds, for a dead
    name server) and cannot be cancelled; checks pass their own executor so stuck lookups
    cannot starve the loop's small default pool that everything else shares.
    """
    literal = parse_ip(host)
    if literal is not None:
        return Resolved(host, [literal], 0.0, literal=True)
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.run_in_executor(
            executor, partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise CheckError(ErrorCode.DNS, f"cannot resolve {host!r}: {exc}") from None
    dns_ms = (time.perf_counter() - started) * 1000
    seen: dict[IPAddress, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = parse_ip(str(sockaddr[0]))
        if ip is not None:
            seen.setdefault(ip)
    if not seen:
        raise CheckError(ErrorCode.DNS, f"{host!r} resolved to no usable address")
    return Resolved(host, list(seen), dns_ms)


async def resolve_vetted(
    host: str,
    port: int,
    policy: SsrfPolicy,
    prefer_ipv6: bool = False,
    executor: Executor | None = None,
) -> tuple[IPAddress, float]:
    """Resolve host and return (the address to connect to, dns ms).

    Refuses the target if ANY address it resolves to is refused: a name that mixes public and
    private answers is not something to probe, and it keeps the choice independent of order.
    IPv4 is preferred unless prefer_ipv6 (many probe hosts have no IPv6 route).
    """
    resolved = await resolve(host, port, executor)
    resolved.addresses.sort(key=lambda ip: (ip.version == 4) == prefer_ipv6)
    for ip in resolved.addresses:
        reason = policy.refusal(ip)
        if reason is not None:
            raise CheckError(
                ErrorCode.SSRF,
                f"{host!r} resolves to {ip} ({reason}); not in the operator allow-list",
            )
    return resolved.addresses[0], resolved.dns_ms
