"""One HTTP exchange on a vetted address: the request a hop sends, the response it got.

The transport (checks/transport.py) turns a Hop into a Fetched, records
connect/tls/ttfb timings in Progress, and raises CheckError for anything that went wrong.
"""

from __future__ import annotations

import errno
import ssl
import zlib
from dataclasses import dataclass

import httpx

from lighthouse.checks.errors import CheckError, ErrorCode
from lighthouse.checks.ssrf import IPAddress


@dataclass(slots=True)
class Hop:
    method: str
    url: httpx.URL  # as the operator wrote it (host name kept for Host and SNI)
    ip: IPAddress  # vetted address to connect to
    headers: list[tuple[str, str]]
    body: bytes | None


def port_of(url: httpx.URL) -> int:
    """The port a request to url connects to."""
    return url.port or (443 if url.scheme == "https" else 80)


@dataclass(slots=True)
class Fetched:
    status: int
    headers: httpx.Headers
    body: bytes  # raw (still content-encoded), at most the read cap
    truncated: bool  # the body went on past the cap; we stopped reading
    cert_days_left: int | None = None
    cert_expires_at: float | None = None  # notAfter, epoch seconds


def _chain(first: BaseException):
    seen = set()
    exc: BaseException | None = first
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def classify(exc: BaseException, phase: str) -> CheckError:
    """Map a transport exception (httpx/httpcore/OSError/ssl) to a specific CheckError."""
    if isinstance(exc, CheckError):
        return exc
    text = f"{phase}: {exc}" if str(exc) else f"{phase}: {type(exc).__name__}"
    for err in _chain(exc):
        if isinstance(err, ssl.SSLCertVerificationError):
            detail = err.verify_message or str(err)
            if err.verify_code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
                return CheckError(ErrorCode.CERT_EXPIRED, f"certificate expired: {detail}")
            return CheckError(ErrorCode.TLS, f"certificate verify failed: {detail}")
        if isinstance(err, ssl.SSLError):
            return CheckError(ErrorCode.TLS, f"TLS error: {err.reason or err}")
        if isinstance(err, ConnectionRefusedError):
            return CheckError(ErrorCode.REFUSED, f"connection refused ({phase})")
        if isinstance(err, ConnectionResetError | BrokenPipeError):
            return CheckError(ErrorCode.RESET, f"connection reset ({phase})")
        if isinstance(err, OSError) and err.errno in (
            errno.ENETUNREACH,
            errno.EHOSTUNREACH,
            errno.EADDRNOTAVAIL,
        ):
            return CheckError(ErrorCode.UNREACHABLE, f"{phase}: {err.strerror}")
    if isinstance(exc, httpx.RemoteProtocolError):
        if "disconnected" in str(exc) or "peer closed" in str(exc):
            return CheckError(ErrorCode.RESET, text)
        return CheckError(ErrorCode.PROTOCOL, text)
    if isinstance(exc, httpx.LocalProtocolError | httpx.DecodingError):
        return CheckError(ErrorCode.PROTOCOL, text)
    if phase == "tls":
        return CheckError(ErrorCode.TLS, text)
    if isinstance(exc, httpx.ConnectError) or phase == "connect":
        return CheckError(ErrorCode.UNREACHABLE, text)
    if isinstance(exc, httpx.ReadError | httpx.WriteError | ConnectionError):
        return CheckError(ErrorCode.RESET, text)
    return CheckError(ErrorCode.PROTOCOL, text)


def decode_body(raw: bytes, content_encoding: str | None, cap: int) -> tuple[bytes, bool]:
    """Undo gzip/deflate with output bounded by cap (no decompression bombs).

    Returns (decoded, truncated). Unknown encodings come back raw.
    """
    enc = (content_encoding or "").strip().lower()
    if enc in ("", "identity"):
        return raw, False
    if enc in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif enc == "deflate":
        wbits = zlib.MAX_WBITS if raw[:1] == b"\x78" else -zlib.MAX_WBITS
    else:
        return raw, False
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(raw, cap)
    except zlib.error as exc:
        raise CheckError(ErrorCode.PROTOCOL, f"cannot decode {enc} body: {exc}") from None
    return out, bool(decoder.unconsumed_tail)
