import ipaddress

import pytest
from lighthouse_ops.sandbox.addressing import POOL, SERVICE_IP, SLOTS, Link, choose_slot


def test_link_is_a_private_slash30_inside_the_pool() -> None:
    link = Link(5)
    assert link.network == ipaddress.ip_network("10.213.0.20/30")
    assert (link.controller_ip, link.host_ip) == ("10.213.0.21", "10.213.0.22")
    assert link.network.subnet_of(POOL) and link.network.is_private


def test_interface_names_fit_the_kernel_limit() -> None:
    last = Link(SLOTS - 1)
    assert len(last.controller_if) <= 15 and len(last.peer_if) <= 15
    assert last.controller_if != last.peer_if


def test_service_address_is_outside_every_host_slot() -> None:
    assert ipaddress.ip_address(SERVICE_IP) in POOL
    assert ipaddress.ip_address(SERVICE_IP) not in Link(SLOTS - 1).network


def test_slot_is_deterministic_and_kept() -> None:
    first = choose_slot("local", "db-1", {})
    assert choose_slot("local", "db-1", {}) == first
    assert choose_slot("local", "db-1", {"local/db-1": 7}) == 7


def test_collisions_probe_to_the_next_free_slot() -> None:
    want = choose_slot("a", "db-1", {})
    taken = {"x/y": want, "x/z": (want + 1) % SLOTS}
    assert choose_slot("a", "db-1", taken) == (want + 2) % SLOTS


def test_many_hosts_get_distinct_slots() -> None:
    taken: dict[str, int] = {}
    for sandbox in ("local", "pytest", "pytest-tsdb", "ci"):
        for i in range(1, 51):
            for role in ("db", "prober"):
                key = f"{sandbox}/{role}-{i}"
                taken[key] = choose_slot(sandbox, f"{role}-{i}", taken)
    assert len(set(taken.values())) == len(taken)


def test_exhausted_pool_is_a_clear_error() -> None:
    full = {f"s/h{i}": i for i in range(SLOTS)}
    with pytest.raises(ValueError, match="exhausted"):
        choose_slot("s", "new", full)
