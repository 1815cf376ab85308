"""HTTP(S) check: request, manual redirects (each hop SSRF-vetted), assertions, timings."""

from __future__ import annotations

import base64
import codecs
import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

from lighthouse.checks import assertions
from lighthouse.checks.context import MIN_TIMEOUT_S, CheckContext
from lighthouse.checks.errors import CheckError, ErrorCode
from lighthouse.checks.fetch import Fetched, Hop, decode_body, port_of
from lighthouse.checks.progress import Progress
from lighthouse.checks.ssrf import IPAddress, resolve_vetted
from lighthouse.checks.transport import fetch
from lighthouse.redact import redact

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 header name
_DEFAULT_FOLLOW = frozenset(range(200, 300))
_DEFAULT_NO_FOLLOW = frozenset(range(200, 400))


@dataclass(slots=True)
class HttpConfig:
    url: httpx.URL
    method: str
    headers: list[tuple[str, str]]
    body: bytes | None
    expected_status: frozenset[int]
    keyword: str | None
    json_path: str | None
    json_expected: Any
    max_latency_ms: float | None
    follow_redirects: bool
    max_redirects: int
    timeout_s: float
    keepalive: bool
    authorization: str | None = None  # Basic auth from `user:pass@` in url, built once


def _number(cfg: dict[str, Any], key: str, default: float | None, lo: float, hi: float):
    value = cfg.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise CheckError(
            ErrorCode.CONFIG, f"{key}: expected a number in [{lo}, {hi}], got {value!r}"
        )
    return value


def parse_max_latency(cfg: dict[str, Any]) -> float | None:
    """`max_latency_ms` (ms, optional): a correct answer slower than this is a latency failure."""
    return _number(cfg, "max_latency_ms", None, 1, 3_600_000)


def parse_url(raw: Any, key: str = "url") -> httpx.URL:
    if not isinstance(raw, str) or not raw:
        raise CheckError(ErrorCode.CONFIG, f"{key}: expected an http(s) URL, got {raw!r}")
    try:
        url = _valid_url(lambda: httpx.URL(raw))
    except ValueError as exc:
        raise CheckError(ErrorCode.CONFIG, f"{key}: {exc}: {redact(raw)[:200]!r}") from None
    return url


def _valid_url(make) -> httpx.URL:
    """make() as an absolute http(s) URL whose host has an A-label; else ValueError.

    httpx encodes international names lazily: an invalid IDN label (xn--zz, a lone U+0080)
    raises from `.host` or `.raw_host` later, so both are touched here, once."""
    try:
        url = make()
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("only http(s) URLs with a host")
        url.raw_host.decode("ascii")
        url.netloc.decode("ascii")
    except (httpx.InvalidURL, UnicodeError, TypeError) as exc:
        raise ValueError(f"invalid URL ({exc})") from None
    return url


def parse_http_config(cfg: dict[str, Any], ctx: CheckContext) -> HttpConfig:
    url = parse_url(cfg.get("url"))
    method = str(cfg.get("method", "GET")).upper()
    if method not in METHODS:
        raise CheckError(ErrorCode.CONFIG, f"method: {method!r} is not one of {sorted(METHODS)}")
    raw_headers = cfg.get("headers") or {}
    if not isinstance(raw_headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int) for k, v in raw_headers.items()
    ):
        raise CheckError(ErrorCode.CONFIG, "headers: expected a mapping of name to string")
    headers = [(k, str(v)) for k, v in raw_headers.items() if k.lower() != "host"]
    for name, value in headers:
        if not _TOKEN.fullmatch(name) or any(c in value for c in "\r\n\x00"):
            raise CheckError(ErrorCode.CONFIG, f"headers: invalid header {name[:60]!r}")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise CheckError(ErrorCode.CONFIG, f"headers: {name!r} is not latin-1 text") from None
    body = cfg.get("body")
    if body is not None and not isinstance(body, str | dict | list):
        raise CheckError(ErrorCode.CONFIG, "body: expected a string (or JSON object/array)")
    if isinstance(body, dict | list):
        body_bytes: bytes | None = json.dumps(body).encode()
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/json"))
    else:
        body_bytes = body.encode() if body is not None else None
    follow = cfg.get("follow_redirects", True)
    if not isinstance(follow, bool):
        raise CheckError(ErrorCode.CONFIG, f"follow_redirects: expected true/false, got {follow!r}")
    if "expected_status" in cfg and cfg["expected_status"] not in (None, []):
        expected = assertions.parse_expected_status(cfg["expected_status"])
    else:
        expected = _DEFAULT_FOLLOW if follow else _DEFAULT_NO_FOLLOW
    json_path = cfg.get("json_path")
    if json_path is not None:
        if not isinstance(json_path, str):
            raise CheckError(ErrorCode.CONFIG, "json_path: expected a string like $.a.b[0]")
        assertions.parse_json_path(json_path)  # fail on a bad path now, not per response
    keyword = cfg.get("keyword")
    if keyword is not None and (not isinstance(keyword, str) or not keyword):
        raise CheckError(ErrorCode.CONFIG, "keyword: expected a non-empty string")
    keepalive = cfg.get("keepalive", False)
    if not isinstance(keepalive, bool):
        raise CheckError(ErrorCode.CONFIG, f"keepalive: expected true/false, got {keepalive!r}")
    return HttpConfig(
        url=url,
        method=method,
        headers=headers,
        body=body_bytes,
        expected_status=expected,
        keyword=keyword,
        json_path=json_path,
        json_expected=cfg.get("json_expected", assertions.MISSING),
        max_latency_ms=parse_max_latency(cfg),
        follow_redirects=follow,
        max_redirects=int(_number(cfg, "max_redirects", ctx.default_max_redirects, 0, 30) or 0),
        timeout_s=float(
            _number(cfg, "timeout_s", ctx.default_timeout_s, MIN_TIMEOUT_S, ctx.max_timeout_s)
            or ctx.default_timeout_s
        ),
        keepalive=keepalive,
        authorization=basic_auth(url),
    )


async def vetted_address(ctx: CheckContext, url: httpx.URL) -> tuple[IPAddress, float]:
    """(address to connect to, dns ms) for url's host, refused by CheckError(SSRF/DNS).

    The name is resolved in its A-label form (IDNA 2008, as httpx encodes it), once: the
    caller connects to exactly this address (no second lookup for a rebinding name to game)."""
    return await resolve_vetted(
        url.raw_host.decode("ascii"), port_of(url), ctx.ssrf, ctx.prefer_ipv6, ctx.dns_executor()
    )


def basic_auth(url: httpx.URL) -> str | None:
    """The Authorization value for credentials written in the URL (`user:pass@`), if any."""
    if not url.userinfo:
        return None
    pair = f"{url.username}:{url.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _request_headers(ctx: CheckContext, cfg: HttpConfig, url: httpx.URL) -> list[tuple[str, str]]:
    headers = [("Host", url.netloc.decode("ascii"))]
    names = {k.lower() for k, _ in cfg.headers}
    if cfg.authorization is not None and "authorization" not in names:
        headers.append(("Authorization", cfg.authorization))
    if "user-agent" not in names:
        headers.append(("User-Agent", ctx.user_agent))
    if "accept" not in names:
        headers.append(("Accept", "*/*"))
    if "accept-encoding" not in names:
        # identity keeps bodies small to cap; gzip/deflate answers are still decoded (bounded).
        headers.append(("Accept-Encoding", "identity"))
    return headers + cfg.headers


def _next_hop(
    hop_url: httpx.URL, method: str, body: bytes | None, fetched: Fetched
) -> tuple[httpx.URL, str, bytes | None] | None:
    """(next URL, method, body) when fetched is a redirect to follow, else None."""
    location = fetched.headers.get("location")
    if fetched.status not in REDIRECT_CODES or not location:
        return None
    try:
        target = _valid_url(lambda: hop_url.join(location))
    except ValueError as exc:
        raise CheckError(
            ErrorCode.PROTOCOL, f"bad redirect Location {redact(location)[:200]!r}: {exc}"
        ) from None
    to_get = fetched.status == 303 and method != "HEAD"
    if to_get or (fetched.status in (301, 302) and method == "POST"):
        method, body = "GET", None
    return target, method, body


async def check_http(cfg: HttpConfig, ctx: CheckContext, progress: Progress) -> None:
    """Run the check; returns on success, raises CheckError otherwise. Fills progress."""
    # Without a body assertion only the snippet is kept; the body is still read (to the cap).
    needs_body = cfg.keyword is not None or cfg.json_path is not None
    fetched = await exchange(cfg, ctx, progress, None if needs_body else ctx.snippet_bytes)
    progress.phase = "assert"
    assess(cfg, ctx, progress, fetched)


async def exchange(
    cfg: HttpConfig, ctx: CheckContext, progress: Progress, keep_body: int | None
) -> Fetched:
    """One request as cfg describes it, redirects followed hop by hop (each vetted again).

    keep_body: bytes of the body kept (None: up to ctx.max_body_bytes). Used by the http,
    graphql, balance and canary checks alike."""
    url, method, body = cfg.url, cfg.method, cfg.body
    redirects = 0
    while True:
        progress.phase = "dns"
        ip, dns_ms = await vetted_address(ctx, url)
        progress.add("dns", dns_ms)
        headers = _request_headers(ctx, cfg, url)
        if redirects and url.host != cfg.url.host:
            # Like browsers: credentials do not follow a redirect to another host.
            headers = [(k, v) for k, v in headers if k.lower() not in ("authorization", "cookie")]
        hop = Hop(method, url, ip, headers, body)
        fetched = await fetch(ctx, hop, progress, keep_body, cfg.keepalive)
        progress.http_status = fetched.status
        if fetched.cert_days_left is not None:
            progress.cert_days_left = fetched.cert_days_left
            progress.cert_expires_at = fetched.cert_expires_at
        if not cfg.follow_redirects:
            break
        nxt = _next_hop(url, method, body, fetched)
        if nxt is None:
            break
        redirects += 1
        progress.timings["redirects"] = redirects
        if redirects > cfg.max_redirects:
            raise CheckError(
                ErrorCode.REDIRECTS,
                f"more than {cfg.max_redirects} redirects (last to {str(nxt[0])[:200]})",
            )
        url, method, body = nxt
    return fetched


def read_text(fetched: Fetched, ctx: CheckContext, progress: Progress) -> tuple[str, bool]:
    """(decoded body text, truncated) of a response read with the whole body kept; the
    start of the body becomes the snippet."""
    decoded, cut = decode_body(
        fetched.body, fetched.headers.get("content-encoding"), ctx.max_body_bytes
    )
    progress.snippet = decoded[: ctx.snippet_bytes]
    return decode_text(decoded, fetched.headers.get_list("content-type")), fetched.truncated or cut


def check_latency(max_latency_ms: float | None, progress: Progress) -> None:
    total = progress.ms_since(progress.started)
    if max_latency_ms is not None and total > max_latency_ms:
        raise CheckError(
            ErrorCode.LATENCY, f"took {total:.0f} ms, more than max_latency_ms={max_latency_ms}"
        )


def assess(cfg: HttpConfig, ctx: CheckContext, progress: Progress, fetched: Fetched) -> None:
    decoded, cut = decode_body(
        fetched.body, fetched.headers.get("content-encoding"), ctx.max_body_bytes
    )
    truncated = fetched.truncated or cut
    progress.snippet = decoded[: ctx.snippet_bytes]
    if fetched.status not in cfg.expected_status:
        raise CheckError(ErrorCode.STATUS, f"HTTP {fetched.status} not in expected status codes")
    if cfg.keyword is not None or cfg.json_path is not None:
        text = decode_text(decoded, fetched.headers.get_list("content-type"))
        if cfg.keyword is not None and cfg.keyword not in text:
            if truncated:
                raise CheckError(
                    ErrorCode.BODY_TOO_LARGE,
                    f"keyword {cfg.keyword!r} not in the first {ctx.max_body_bytes} bytes",
                )
            raise CheckError(ErrorCode.ASSERTION, f"keyword {cfg.keyword!r} not found in body")
        if cfg.json_path is not None:
            if truncated:
                raise CheckError(
                    ErrorCode.BODY_TOO_LARGE,
                    f"JSON body larger than the {ctx.max_body_bytes}-byte read cap",
                )
            assertions.check_json(text, cfg.json_path, cfg.json_expected)
    check_latency(cfg.max_latency_ms, progress)


def _charset(content_types: list[str]) -> str:
    """The text encoding a response declares; UTF-8 when it names none, or none we trust."""
    for value in content_types:
        for part in value.split(";")[1:]:
            name, _, charset = part.strip().partition("=")
            if name.lower() == "charset" and charset:
                try:
                    info = codecs.lookup(charset.strip("\"' "))
                except (LookupError, ValueError):  # unknown, or a name with a NUL in it
                    return "utf-8"
                # rot13, base64, zlib... are codecs but not text encodings; idna and
                # punycode refuse errors="replace": a target must not pick those.
                if not info._is_text_encoding or info.name in _UNSAFE_CHARSETS:
                    return "utf-8"
                return info.name
    return "utf-8"


_UNSAFE_CHARSETS = frozenset(
    {"idna", "punycode", "raw-unicode-escape", "unicode-escape", "undefined"}
)


def decode_text(body: bytes, content_types: list[str]) -> str:
    try:
        return body.decode(_charset(content_types), errors="replace")
    except (UnicodeError, LookupError, ValueError):  # a codec that still refuses
        return body.decode("utf-8", errors="replace")
