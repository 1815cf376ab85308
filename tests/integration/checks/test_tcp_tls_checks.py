"""TCP connect and TLS-expiry checks against real local listeners."""

from __future__ import annotations

import socket

from lighthouse.checks import ssrf
from lighthouse.models import Status

from tests.integration.checks.conftest import probe


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tcp_connect_success_and_refused(hostile):
    r = probe("tcp", {"host": "127.0.0.1", "port": hostile.port})
    assert r.status is Status.SUCCESS and r.timings["connect"] > 0
    r = probe("tcp", {"host": "127.0.0.1", "port": _closed_port()})
    assert (r.status, r.error_code) == (Status.ERROR, "refused")


def test_tcp_ssrf_guard(hostile):
    r = probe("tcp", {"host": "127.0.0.1", "port": hostile.port}, {"allow_cidrs": []})
    assert r.error_code == "ssrf"


def test_tls_days_left_and_warning(hostile):
    ctx = {"cafile": hostile.ca_file}
    r = probe("tls", {"host": "localhost", "port": hostile.tls_ports["good"]}, ctx)
    assert r.status is Status.SUCCESS, r.error_message
    assert r.cert_days_left > 300 and r.timings["tls"] > 0
    cfg = {"host": "127.0.0.1", "port": hostile.tls_ports["expiring"], "warn_days": 14}
    r = probe("tls", cfg, ctx)
    assert (r.status, r.error_code) == (Status.FAILURE, "cert_expiring")
    assert r.cert_days_left in (4, 5)
    assert abs(r.cert_expires_at - hostile.expiring_not_after) < 2  # the exact notAfter
    r = probe("tls", {**cfg, "warn_days": 3}, ctx)
    assert r.status is Status.SUCCESS


def test_tls_invalid_certificates(hostile):
    ctx = {"cafile": hostile.ca_file}
    for flavour, code in [
        ("expired", "cert_expired"),
        ("untrusted", "tls"),
        ("wrong_name", "tls"),
        ("plaintext", "tls"),
    ]:
        r = probe("tls", {"host": "localhost", "port": hostile.tls_ports[flavour]}, ctx)
        assert r.error_code == code, (flavour, r.error_message)


def test_tls_refused_port():
    r = probe("tls", {"host": "127.0.0.1", "port": _closed_port()})
    assert r.error_code == "refused"


def test_connects_to_the_vetted_address_not_a_second_lookup(hostile, monkeypatch):
    """DNS rebinding: the name is resolved once; the connection goes to that vetted IP."""
    lookups = []
    real = ssrf.resolve

    async def one_answer_then_metadata(host, port, executor=None):
        lookups.append(host)
        if len(lookups) == 1:
            return await real("127.0.0.1", port, executor)
        return await real("169.254.169.254", port)  # what a rebinding DNS server would do

    monkeypatch.setattr(ssrf, "resolve", one_answer_then_metadata)
    url = f"http://rebind.example:{hostile.port}/echo"
    r = probe(
        "http",
        {"url": url, "json_path": "$.host", "json_expected": f"rebind.example:{hostile.port}"},
        {"allow_cidrs": ["127.0.0.1/32"]},
    )
    assert r.status is Status.SUCCESS, r.error_message
    assert lookups == ["rebind.example"]
