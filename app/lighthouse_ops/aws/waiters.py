"""Polling waiters with a deadline and exponential backoff.

boto3's built-in waiters poll at a fixed delay and count attempts; the runbooks want a
wall-clock deadline, growing delays (EC2 rate-limits describe calls) and a report of the
last state seen when the deadline passes, so the operator knows where things stand.
Clock and sleep are injectable so tests can run a timeout path without waiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from botocore.exceptions import ClientError

log = logging.getLogger(__name__)
T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Backoff:
    """Delays grow from `initial_s` by `factor` up to `max_s`; give up after `timeout_s`."""

    timeout_s: float = 900.0
    initial_s: float = 2.0
    max_s: float = 30.0
    factor: float = 2.0

    def delays(self):
        delay = self.initial_s
        while True:
            yield delay
            delay = min(delay * self.factor, self.max_s)


class WaitTimeout(RuntimeError):
    """The condition was not reached before the deadline."""

    def __init__(self, what: str, waited_s: float, last_state: str):
        super().__init__(
            f"timed out after {waited_s:.0f}s waiting for {what} (last state: {last_state})")
        self.what = what
        self.waited_s = waited_s
        self.last_state = last_state


class WaitFailed(RuntimeError):
    """The resource reached a state from which the awaited one cannot follow."""

    def __init__(self, what: str, state: str):
        super().__init__(f"gave up waiting for {what}: reached {state}")
        self.what = what
        self.state = state


@dataclass
class Clock:
    """Real time; tests pass a fake whose sleep advances its own clock."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def wait_until(
    probe: Callable[[], T],
    *,
    what: str,
    done: Callable[[T], bool],
    failed: Callable[[T], bool] = lambda _s: False,
    show: Callable[[T], str] = str,
    backoff: Backoff | None = None,
    clock: Clock | None = None,
    on_poll: Callable[[str, float], None] | None = None,
) -> T:
    """Call `probe` until `done(state)`; raise WaitTimeout/WaitFailed otherwise."""
    backoff = backoff or Backoff()
    clock = clock or Clock()
    start = clock.now()
    delays = backoff.delays()
    while True:
        state = probe()
        waited = clock.now() - start
        shown = show(state)
        log.debug("wait what=%r state=%s waited_s=%.1f", what, shown, waited)
        if on_poll:
            on_poll(shown, waited)
        if done(state):
            return state
        if failed(state):
            raise WaitFailed(what, shown)
        remaining = backoff.timeout_s - waited
        if remaining <= 0:
            raise WaitTimeout(what, waited, shown)
        clock.sleep(min(next(delays), remaining))


# --- EC2 waiters -------------------------------------------------------------------------


def _instance(ec2: Any, instance_id: str) -> dict:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def wait_instance_state(
    ec2: Any, instance_id: str, wanted: str, *, backoff: Backoff | None = None,
    clock: Clock | None = None, on_poll: Callable[[str, float], None] | None = None,
) -> dict:
    """Wait for an instance to reach `wanted` (running/stopped); terminated is final."""
    # Only `terminated` is final: right after a start/stop call EC2 may still show the old state.
    impossible = {"terminated"} if wanted != "terminated" else set()
    return wait_until(
        lambda: _instance(ec2, instance_id),
        what=f"instance {instance_id} to be {wanted}",
        done=lambda i: i["State"]["Name"] == wanted,
        failed=lambda i: i["State"]["Name"] in impossible,
        show=lambda i: i["State"]["Name"],
        backoff=backoff, clock=clock, on_poll=on_poll,
    )


def wait_instance_status_ok(
    ec2: Any, instance_id: str, *, backoff: Backoff | None = None,
    clock: Clock | None = None, on_poll: Callable[[str, float], None] | None = None,
) -> dict:
    """Both EC2 status checks (instance + system) report ok."""

    def probe() -> dict:
        got = ec2.describe_instance_status(InstanceIds=[instance_id], IncludeAllInstances=True)
        statuses = got["InstanceStatuses"]
        return statuses[0] if statuses else {}

    def show(s: dict) -> str:
        if not s:
            return "no status yet"
        return (f"{s['InstanceState']['Name']} instance={s['InstanceStatus']['Status']} "
                f"system={s['SystemStatus']['Status']}")

    return wait_until(
        probe,
        what=f"instance {instance_id} status checks ok",
        done=lambda s: bool(s) and s["InstanceStatus"]["Status"] == "ok"
        and s["SystemStatus"]["Status"] == "ok",
        failed=lambda s: bool(s) and (
            s["InstanceState"]["Name"] in ("stopped", "terminated")
            or s["InstanceStatus"]["Status"] == "impaired"
            or s["SystemStatus"]["Status"] == "impaired"
        ),
        show=show, backoff=backoff, clock=clock, on_poll=on_poll,
    )


def wait_volume_state(
    ec2: Any, volume_id: str, wanted: str, *, backoff: Backoff | None = None,
    clock: Clock | None = None, on_poll: Callable[[str, float], None] | None = None,
) -> dict:
    """Wait for a volume to be `available` or `in-use`; error/deleted are final."""
    return wait_until(
        lambda: ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0],
        what=f"volume {volume_id} to be {wanted}",
        done=lambda v: v["State"] == wanted,
        failed=lambda v: v["State"] in ("error", "deleted", "deleting"),
        show=lambda v: v["State"],
        backoff=backoff, clock=clock, on_poll=on_poll,
    )


def wait_attached(
    ec2: Any, volume_id: str, instance_id: str, *, backoff: Backoff | None = None,
    clock: Clock | None = None, on_poll: Callable[[str, float], None] | None = None,
) -> dict:
    def state(v: dict) -> str:
        for a in v.get("Attachments", []):
            if a["InstanceId"] == instance_id:
                return a["State"]
        return "detached"

    return wait_until(
        lambda: ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0],
        what=f"volume {volume_id} attached to {instance_id}",
        done=lambda v: state(v) == "attached",
        show=state, backoff=backoff, clock=clock, on_poll=on_poll,
    )


def wait_snapshot_completed(
    ec2: Any, snapshot_id: str, *, backoff: Backoff | None = None,
    clock: Clock | None = None, on_poll: Callable[[str, float], None] | None = None,
) -> dict:
    return wait_until(
        lambda: ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0],
        what=f"snapshot {snapshot_id} to complete",
        done=lambda s: s["State"] == "completed",
        failed=lambda s: s["State"] in ("error", "recoverable"),
        show=lambda s: f"{s['State']} {s.get('Progress', '')}".strip(),
        backoff=backoff, clock=clock, on_poll=on_poll,
    )


def wait_volume_modified(
    ec2: Any, volume_id: str, *, backoff: Backoff | None = None,
    clock: Clock | None = None, on_poll: Callable[[str, float], None] | None = None,
) -> dict:
    """A modification is usable once `optimizing` (the new size is visible to the OS)."""

    def probe() -> dict:
        try:
            mods = ec2.describe_volumes_modifications(VolumeIds=[volume_id])["VolumesModifications"]
        except ClientError as exc:  # AWS: no modification recorded yet right after the call
            if exc.response["Error"]["Code"] == "InvalidVolumeModification.NotFound":
                return {"ModificationState": "not-started"}
            raise
        if not mods:
            return {"ModificationState": "not-started"}
        return max(mods, key=lambda m: m.get("StartTime") or _EPOCH)

    return wait_until(
        probe,
        what=f"volume {volume_id} modification to reach optimizing",
        done=lambda m: m["ModificationState"] in ("optimizing", "completed"),
        failed=lambda m: m["ModificationState"] == "failed",
        show=lambda m: f"{m['ModificationState']} {m.get('Progress', '')}".strip(),
        backoff=backoff, clock=clock, on_poll=on_poll,
    )
