"""dns checks against a real local DNS server (dnspython codec, UDP + TCP)."""

from __future__ import annotations

import pytest
from lighthouse.models import Status

from tests.integration.checks.conftest import probe
from tests.support.dnsserver import DnsServer, free_udp_port

LONG_TXT = ["v=spf1 " + f"include:_spf{i}.example.org" for i in range(40)]


@pytest.fixture(scope="module")
def dns_server():
    server = DnsServer(
        {
            ("app.test", "A"): ["192.0.2.10", "192.0.2.11"],
            ("app.test", "AAAA"): ["2001:db8::0:1"],
            ("www.test", "CNAME"): ["app.test."],
            ("app.test", "MX"): ["10 Mail.App.Test."],
            ("app.test", "TXT"): ['"v=spf1 -all"'],
            ("big.test", "TXT"): [f'"{t[:200]}"' for t in LONG_TXT],
            ("slow.test", "A"): ["192.0.2.1"],
            ("broken.test", "A"): ["192.0.2.1"],
        }
    ).start()
    server.silent.add("slow.test")
    server.servfail.add("broken.test")
    yield server
    server.stop()


def dns(server, **cfg):
    return probe("dns", {"server": "127.0.0.1", "port": server.port, **cfg})


def test_a_records_contain_and_exact(dns_server):
    r = dns(dns_server, name="app.test", expected=["192.0.2.10"])
    assert r.status is Status.SUCCESS, r.error_message
    assert r.timings["dns"] > 0
    exact = dns(dns_server, name="app.test", expected=["192.0.2.11", "192.0.2.10"], match="exact")
    assert exact.status is Status.SUCCESS, exact.error_message
    wrong = dns(dns_server, name="app.test", expected=["192.0.2.10"], match="exact")
    assert (wrong.status, wrong.error_code) == (Status.FAILURE, "assertion")
    assert "unexpected answer '192.0.2.11'" in wrong.error_message
    assert "192.0.2.11" in wrong.response_snippet  # what the server said, for the operator


def test_aaaa_cname_mx_txt_are_normalised(dns_server):
    assert dns(dns_server, name="app.test", record="AAAA", expected=["2001:db8::1"]).status is (
        Status.SUCCESS
    )
    cname = dns(dns_server, name="www.test", record="CNAME", expected=["APP.test."])
    assert cname.status is Status.SUCCESS, cname.error_message
    followed = dns(dns_server, name="www.test", expected=["192.0.2.10"])  # A through a CNAME
    assert followed.status is Status.SUCCESS, followed.error_message
    mx = dns(dns_server, name="app.test", record="mx", expected=["10 mail.app.test"])
    assert mx.status is Status.SUCCESS, mx.error_message
    txt = dns(dns_server, name="app.test", record="TXT", expected="v=spf1 -all")
    assert txt.status is Status.SUCCESS, txt.error_message


def test_truncated_udp_answer_is_retried_over_tcp(dns_server):
    r = dns(dns_server, name="big.test", record="TXT", expected=[LONG_TXT[39][:200]])
    assert r.status is Status.SUCCESS, r.error_message
    assert ("tcp", "big.test.", "TXT") in dns_server.queries


def test_missing_name_record_and_wrong_answer_are_failures(dns_server):
    nx = dns(dns_server, name="nope.test")
    assert (nx.status, nx.error_code) == (Status.FAILURE, "assertion")
    assert "NXDOMAIN" in nx.error_message
    empty = dns(dns_server, name="app.test", record="CNAME")
    assert empty.error_code == "assertion" and "no CNAME record" in empty.error_message
    wrong = dns(dns_server, name="app.test", expected=["192.0.2.99"])
    assert "'192.0.2.99' not among the answers" in wrong.error_message


def test_dead_and_failing_servers_are_timeout_and_error(dns_server):
    slow = dns(dns_server, name="slow.test", timeout_s=0.5)
    assert slow.status is Status.TIMEOUT and slow.latency_ms < 2000
    fail = dns(dns_server, name="broken.test")
    assert (fail.status, fail.error_code) == (Status.ERROR, "dns")
    nobody = probe("dns", {"name": "app.test", "server": "127.0.0.1", "port": free_udp_port(),
                           "timeout_s": 0.5})
    assert nobody.status in (Status.TIMEOUT, Status.ERROR) and nobody.error_code


def test_server_must_pass_the_ssrf_policy(dns_server):
    before = len(dns_server.queries)
    r = probe("dns", {"name": "app.test", "server": "127.0.0.1", "port": dns_server.port},
              {"allow_cidrs": []})
    assert r.error_code == "ssrf" and "127.0.0.1" in r.error_message
    metadata = probe("dns", {"name": "app.test", "server": "169.254.169.254"}, {"allow_cidrs": []})
    assert metadata.error_code == "ssrf"
    assert len(dns_server.queries) == before  # nothing was sent


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({}, "name"),
        ({"name": "a..b"}, "name"),
        ({"name": "a.test", "record": "SRV"}, "record"),
        ({"name": "a.test", "server": "ns1.example.com"}, "server"),
        ({"name": "a.test", "port": 5353}, "port"),
        ({"name": "a.test", "expected": [1]}, "expected"),
        ({"name": "a.test", "match": "exact"}, "match"),
        ({"name": "a.test", "records": "A"}, "records"),
    ],
)
def test_config_errors_name_the_key(cfg, key):
    r = probe("dns", cfg)
    assert r.error_code == "config" and key in r.error_message
