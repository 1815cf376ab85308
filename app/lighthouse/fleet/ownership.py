"""Who checks what: each monitor once per location, by exactly one live prober there.

Rendezvous (highest-random-weight) hashing: a monitor goes to the live prober of the location
with the highest hash(monitor, prober). Every prober computes the same answer from the same
member list, nobody hands anything out, and when a prober joins or dies only the monitors whose
top scorer changed move (~1/N of them). Measured in bench/fleet_ownership.py.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


def score(monitor_id: uuid.UUID, prober: str) -> int:
    digest = hashlib.blake2b(monitor_id.bytes + prober.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(monitor_id: uuid.UUID, probers: Iterable[str]) -> str | None:
    """The prober (of one location) that checks the monitor; None when there is none."""
    best: tuple[int, str] | None = None
    for name in probers:
        s = (score(monitor_id, name), name)  # the name breaks a (practically absent) tie
        if best is None or s > best:
            best = s
    return best[1] if best else None


def majority(n: int) -> int:
    return n // 2 + 1


@dataclass(frozen=True, slots=True)
class Members:
    """The live fleet as one prober sees it after a heartbeat."""

    me: str
    location: str
    by_location: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # sorted names

    @property
    def locations(self) -> tuple[str, ...]:
        return tuple(sorted(self.by_location))

    def checked_from(self, locations: tuple[str, ...] | None) -> tuple[str, ...]:
        """Where a monitor is checked from: its own list, or every live location."""
        return tuple(sorted(set(locations))) if locations else self.locations

    def voting(self, locations: tuple[str, ...] | None) -> tuple[str, ...]:
        """The monitor's locations that have a live prober: only they can see it, so only
        they vote (a listed location whose probers are all gone cannot block an alert)."""
        return tuple(loc for loc in self.checked_from(locations) if loc in self.by_location)

    def quorum(self, locations: tuple[str, ...] | None, quorum: int | None) -> int:
        n = max(1, len(self.voting(locations)))
        return max(1, min(quorum or majority(n), n))

    def owns(self, monitor_id: uuid.UUID, locations: tuple[str, ...] | None) -> bool:
        if self.location not in self.checked_from(locations):
            return False
        peers = self.by_location.get(self.location) or (self.me,)
        return owner(monitor_id, peers) == self.me

    def leads(self, locations: tuple[str, ...] | None) -> bool:
        """One location sends the alerts that are not about up/down (latency, certificate,
        balance): the first of the monitor's locations that has a live prober."""
        live = self.voting(locations)
        return (live[0] if live else self.location) == self.location


def members(me: str, location: str, rows: Iterable[tuple[str, str]]) -> Members:
    """From (name, location) rows of live probers; this prober counts as live in any case."""
    grouped: dict[str, set[str]] = {location: {me}}
    for name, loc in rows:
        grouped.setdefault(loc, set()).add(name)
    return Members(me, location, {loc: tuple(sorted(ns)) for loc, ns in grouped.items()})
