"""DNS check: resolve a name (A, AAAA, CNAME, MX, NS, TXT) and compare the answers.

dnspython does the protocol (UDP with TCP fallback on truncation, CNAME chains, rcodes).
Without `server` the system's resolvers (/etc/resolv.conf) answer, as they do for every other
check; a `server` is a target the monitor chose, so it must be an IP literal that passes the
SSRF policy (a name would need a lookup whose answer we could not pin).

expected: a list of answers. `match: contains` (default) wants each of them among the answers,
`exact` wants exactly that set. Answers are compared normalised: addresses as ipaddress prints
them, names lower-case without the final dot, MX as "preference exchange", TXT strings joined.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from lighthouse.checks.context import CheckContext
from lighthouse.checks.errors import CheckError, ErrorCode
from lighthouse.checks.keys import reject_unknown, text
from lighthouse.checks.progress import Progress
from lighthouse.checks.ssrf import parse_ip
from lighthouse.checks.tcp import parse_timeout

KEYS = ("name", "record", "server", "port", "expected", "match")
RECORDS = ("A", "AAAA", "CNAME", "MX", "NS", "TXT")
_NAMES = frozenset({"CNAME", "NS"})


@dataclass(slots=True)
class DnsConfig:
    name: str
    record: str
    server: str | None
    port: int
    expected: frozenset[str]
    exact: bool
    timeout_s: float


def normalise(record: str, answer: str) -> str:
    """One answer as compared: the same spelling for what a user writes and what DNS sends."""
    if record == "TXT":
        return answer  # spaces inside TXT strings are data
    answer = answer.strip()
    if record in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(answer))
        except ValueError:
            return answer
    if record in _NAMES:
        return answer.rstrip(".").lower()
    if record == "MX":
        pref, _, host = answer.partition(" ")
        return f"{pref} {host.strip().rstrip('.').lower()}"
    return answer  # pragma: no cover (RECORDS holds no other type)


def parse_dns_config(cfg: dict[str, Any], ctx: CheckContext) -> DnsConfig:
    reject_unknown(cfg, KEYS, "dns")
    name = text(cfg, "name", limit=253)
    assert name is not None
    try:
        dns.name.from_text(name)
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise CheckError(ErrorCode.CONFIG, f"name: not a DNS name ({exc})") from None
    record = str(cfg.get("record", "A")).upper()
    if record not in RECORDS:
        raise CheckError(
            ErrorCode.CONFIG, f"record: expected one of {', '.join(RECORDS)}, got {record!r}"
        )
    server = text(cfg, "server", required=False, limit=64)
    if server is not None:
        ip = parse_ip(server)
        if ip is None:
            raise CheckError(
                ErrorCode.CONFIG, f"server: expected an IP address of a name server, got {server!r}"
            )
        reason = ctx.ssrf.refusal(ip)
        if reason is not None:
            raise CheckError(
                ErrorCode.SSRF, f"server {ip} ({reason}); not in the operator allow-list"
            )
        server = str(ip)
    port = cfg.get("port", 53)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise CheckError(ErrorCode.CONFIG, f"port: expected 1-65535, got {port!r}")
    if "port" in cfg and server is None:
        raise CheckError(ErrorCode.CONFIG, "port: only with server (the system resolver's is set)")
    expected = cfg.get("expected", [])
    if isinstance(expected, str):
        expected = [expected]
    if not isinstance(expected, list) or not all(isinstance(e, str) and e for e in expected):
        raise CheckError(ErrorCode.CONFIG, "expected: expected a list of answers (strings)")
    match = cfg.get("match", "contains")
    if match not in ("contains", "exact"):
        raise CheckError(ErrorCode.CONFIG, f"match: expected contains or exact, got {match!r}")
    if match == "exact" and not expected:
        raise CheckError(ErrorCode.CONFIG, "match: exact needs the expected answers")
    return DnsConfig(
        name,
        record,
        server,
        port,
        frozenset(normalise(record, e) for e in expected),
        match == "exact",
        parse_timeout(cfg, ctx),
    )


def _text(record: str, rdata: Any) -> str:
    if record == "TXT":
        return b"".join(rdata.strings).decode("utf-8", errors="replace")
    return normalise(record, rdata.to_text())


def _resolver(cfg: DnsConfig) -> dns.asyncresolver.Resolver:
    if cfg.server is None:
        return dns.asyncresolver.Resolver()  # reads /etc/resolv.conf
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [cfg.server]
    resolver.port = cfg.port
    return resolver


async def check_dns(cfg: DnsConfig, ctx: CheckContext, progress: Progress) -> None:
    progress.phase = "dns"
    mark = time.perf_counter()
    where = f"{cfg.server}:{cfg.port}" if cfg.server else "the system resolver"
    try:
        resolver = _resolver(cfg)
        answer = await resolver.resolve(
            cfg.name, cfg.record, search=False, lifetime=cfg.timeout_s
        )
    except dns.resolver.NXDOMAIN:
        raise CheckError(ErrorCode.ASSERTION, f"{cfg.name}: no such name (NXDOMAIN)") from None
    except dns.resolver.NoAnswer:
        raise CheckError(ErrorCode.ASSERTION, f"{cfg.name}: no {cfg.record} record") from None
    except dns.resolver.LifetimeTimeout:
        raise CheckError(
            ErrorCode.TIMEOUT, f"{where} did not answer within {cfg.timeout_s:g} s"
        ) from None
    except dns.resolver.NoNameservers as exc:  # SERVFAIL / REFUSED from every server
        raise CheckError(ErrorCode.DNS, f"{where} failed: {str(exc)[:300]}") from None
    except dns.exception.DNSException as exc:
        raise CheckError(ErrorCode.DNS, f"{where}: {type(exc).__name__}: {exc}") from None
    progress.add("dns", progress.ms_since(mark))
    got = [_text(cfg.record, rdata) for rdata in answer]
    progress.snippet = "\n".join(got).encode()[: ctx.snippet_bytes]
    seen = set(got)
    missing = sorted(cfg.expected - seen)
    if missing:
        raise CheckError(
            ErrorCode.ASSERTION,
            f"{cfg.record} {cfg.name}: {missing[0]!r} not among the answers {sorted(seen)[:5]}",
        )
    if cfg.exact and seen != cfg.expected:
        extra = sorted(seen - cfg.expected)
        raise CheckError(
            ErrorCode.ASSERTION, f"{cfg.record} {cfg.name}: unexpected answer {extra[0]!r}"
        )
