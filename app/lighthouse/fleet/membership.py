"""Fleet membership: heartbeats into the `probers` table and the live member list.

Every lease_s/3 a prober upserts its row and reads who else is live (heartbeat within their
lease, by the database clock). When the member list changes, on_change gets the new Members and
the prober reloads what it owns. While the database is unreachable the last list stays: every
prober keeps checking what it had, so an outage of the database neither doubles nor drops
checks. A prober that stops cleanly deletes its row, so its monitors move at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

from psycopg_pool import AsyncConnectionPool

from lighthouse import __version__
from lighthouse.fleet.ownership import Members, members
from lighthouse.logs import event
from lighthouse.metrics import Metrics

log = logging.getLogger("lighthouse.fleet")



def live(alias: str = "") -> str:
    """The one liveness rule, as SQL over a `probers` row (optionally aliased): a heartbeat
    younger than that prober's own lease, by the database clock."""
    p = f"{alias}." if alias else ""
    return f"{p}heartbeat_at > now() - make_interval(secs => {p}lease_s)"


# `old` is the row before this heartbeat: a live row from another instance means two probers
# were given the same name, and they would both check the same monitors.
HEARTBEAT_SQL = f"""
WITH old AS (
  SELECT instance, {live()} AS live
  FROM probers WHERE name = %(name)s
)
INSERT INTO probers (name, location, lease_s, version, instance)
VALUES (%(name)s, %(location)s, %(lease)s, %(version)s, %(instance)s)
ON CONFLICT (name) DO UPDATE
  SET location = EXCLUDED.location, lease_s = EXCLUDED.lease_s, version = EXCLUDED.version,
      instance = EXCLUDED.instance, heartbeat_at = now(),
      started_at = CASE WHEN probers.instance = EXCLUDED.instance THEN probers.started_at
                        ELSE now() END
RETURNING (SELECT instance FROM old), (SELECT live FROM old)
"""
LIVE_SQL = f"SELECT name, location FROM probers WHERE {live()}"
LEAVE_SQL = "DELETE FROM probers WHERE name = %s AND instance = %s"


class Membership:
    def __init__(self, pool: AsyncConnectionPool, name: str, location: str, lease_s: float,
                 metrics: Metrics, on_change: Callable[[Members], None] | None = None) -> None:
        self.pool = pool
        self.name = name
        self.location = location
        self.lease_s = lease_s
        self.metrics = metrics
        self.on_change = on_change
        self.instance = uuid.uuid4()
        self.current = members(name, location, [])
        self.beats = 0
        self._started = False
        self._stopping = asyncio.Event()

    @property
    def interval_s(self) -> float:
        return self.lease_s / 3

    async def beat(self) -> Members:
        """One heartbeat; returns (and on a change, announces) the live members."""
        params = {"name": self.name, "location": self.location, "lease": self.lease_s,
                  "version": __version__, "instance": self.instance}
        async with self.pool.connection() as conn:
            row = await (await conn.execute(HEARTBEAT_SQL, params)).fetchone()
            assert row is not None  # INSERT ... RETURNING: one row
            old_instance, old_live = row
            rows = await (await conn.execute(LIVE_SQL)).fetchall()
        if old_live and old_instance not in (None, self.instance) and not self._started:
            event(log, "another live prober has this fleet.name; both will check the same "
                       "monitors until it stops", logging.ERROR, name=self.name)
        self._started = True
        self.beats += 1
        new = members(self.name, self.location, rows)
        if new != self.current:
            before, self.current = self.current, new
            for loc in set(before.by_location) - set(new.by_location):
                self.metrics.fleet_members.remove(loc)
            for loc, names in new.by_location.items():
                self.metrics.fleet_members.labels(loc).set(len(names))
            event(log, "fleet members changed", location=self.location,
                  members=",".join(f"{loc}:{len(n)}" for loc, n in sorted(new.by_location.items())))
            if self.on_change is not None:
                self.on_change(new)
        return new

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.beat()
            except Exception as exc:  # database down, pool timeout: never end the loop
                self.metrics.fleet_heartbeat_errors.inc()
                event(log, "fleet heartbeat failed; ownership unchanged", logging.WARNING,
                      error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)

    async def leave(self) -> None:
        """Stop heartbeating and remove our row, so the others take over now, not after the
        lease."""
        self._stopping.set()
        try:
            async with self.pool.connection(timeout=2.0) as conn:
                await conn.execute(LEAVE_SQL, (self.name, self.instance))
        except Exception as exc:  # they will notice the lease running out instead
            event(log, "fleet leave not recorded", logging.WARNING, error=type(exc).__name__)
