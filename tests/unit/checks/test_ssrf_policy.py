from __future__ import annotations

import ipaddress

import pytest
from lighthouse.checks import CheckError, ErrorCode, SsrfPolicy
from lighthouse.checks.ssrf import blocked_reason, resolve_vetted

from tests.unit.checks.aio import run_async

BLOCKED = [
    "127.0.0.1",
    "127.255.0.9",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.0.1",
    "100.64.0.1",
    "0.0.0.0",  # noqa: S104
    "0.1.2.3",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "192.0.0.8",
    "192.0.2.1",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "64:ff9b::a00:1",
    "2002:a00:1::",
    "::127.0.0.1",
    "fec0::1",
]
PUBLIC = [
    "1.1.1.1",
    "8.8.8.8",
    "93.184.216.34",
    "2606:4700:4700::1111",
    "::ffff:1.1.1.1",
    "2002:101:101::",
]


@pytest.mark.parametrize("addr", BLOCKED)
def test_internal_addresses_are_refused_by_default(addr):
    ip = ipaddress.ip_address(addr)
    assert blocked_reason(ip) is not None
    assert SsrfPolicy().refusal(ip) is not None


@pytest.mark.parametrize("addr", PUBLIC)
def test_public_addresses_are_allowed(addr):
    assert SsrfPolicy().refusal(ipaddress.ip_address(addr)) is None


def test_allow_list_permits_only_its_cidrs():
    policy = SsrfPolicy.from_cidrs(["127.0.0.1/32", "10.20.0.0/16"])
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("::ffff:127.0.0.1")) is None  # mapped form
    assert policy.refusal(ipaddress.ip_address("10.20.3.4")) is None
    assert policy.refusal(ipaddress.ip_address("127.0.0.2")) == "loopback"
    assert policy.refusal(ipaddress.ip_address("169.254.169.254")) == "link-local"


def test_disabled_policy_allows_everything():
    assert SsrfPolicy(enabled=False).refusal(ipaddress.ip_address("169.254.169.254")) is None


def test_ip_literal_is_vetted_without_dns():
    with pytest.raises(CheckError) as err:
        run_async(resolve_vetted("169.254.169.254", 80, SsrfPolicy()))
    assert err.value.code is ErrorCode.SSRF
    ip, dns_ms = run_async(resolve_vetted("1.1.1.1", 80, SsrfPolicy()))
    assert str(ip) == "1.1.1.1" and dns_ms == 0


def test_name_resolving_to_loopback_is_refused():
    with pytest.raises(CheckError) as err:
        run_async(resolve_vetted("localhost", 80, SsrfPolicy()))
    assert err.value.code is ErrorCode.SSRF and "localhost" in err.value.message


def test_unresolvable_name_is_dns_error():
    with pytest.raises(CheckError) as err:
        run_async(resolve_vetted("no-such-host.invalid", 80, SsrfPolicy()))
    assert err.value.code is ErrorCode.DNS


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f000001", "127.1", "017700000001", "0177.0.0.1"]
)
def test_odd_spellings_of_loopback_are_refused_after_resolution(host):
    with pytest.raises(CheckError) as err:
        run_async(resolve_vetted(host, 80, SsrfPolicy()))
    assert err.value.code in (ErrorCode.SSRF, ErrorCode.DNS)
    if err.value.code is ErrorCode.DNS:  # a resolver that refuses the spelling is fine too
        return
    assert "127.0.0.1" in err.value.message
