"""Test doubles for the AWS runbooks: a host-ops recorder, a scripted verifier, a console,
an EC2 wrapper that logs calls / reports slow states, and an AWS Backup stub."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lighthouse_ops.aws.backup import BackupJob, RecoveryPoint
from lighthouse_ops.aws.verify import Check
from lighthouse_ops.aws.waiters import Clock


@dataclass
class Events:
    """One ordered log shared by the fakes, so tests can assert the order across systems."""

    items: list[str] = field(default_factory=list)

    def add(self, item: str) -> None:
        self.items.append(item)

    def index(self, item: str) -> int:
        return self.items.index(item)


@dataclass
class RecordingHostOps:
    events: Events
    fs_size_gib: float = 0.0
    fail: set[str] = field(default_factory=set)

    def _do(self, name: str) -> None:
        self.events.add(f"host:{name}")
        if name in self.fail:
            raise RuntimeError(f"{name} failed (injected)")

    def stop_database(self) -> None:
        self._do("stop_database")

    def start_database(self) -> None:
        self._do("start_database")

    def mount_volume(self, volume_id: str, device: str, mount_point: str) -> None:
        self._do(f"mount {volume_id} {device} {mount_point}")

    def mount_data_volume(self, volume_id: str, mount_point: str) -> None:
        self._do(f"mount-data {volume_id} {mount_point}")

    def grow_filesystem(self, volume_id: str, mount_point: str) -> None:
        self._do(f"grow {volume_id} {mount_point}")

    def filesystem_size_gib(self, mount_point: str) -> float:
        return self.fs_size_gib


@dataclass
class ScriptedVerifier:
    events: Events
    ok: bool = True

    def verify(self) -> list[Check]:
        self.events.add("verify")
        return [Check("postgresql", self.ok, "PostgreSQL 17" if self.ok else "refused"),
                Check("prober", True, "HTTP 200")]


@dataclass
class RecordingConsole:
    answer: bool = False
    lines: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    def info(self, message: str) -> None:
        self.lines.append(message)

    def progress(self, message: str) -> None:
        self.lines.append(f"... {message}")

    def confirm(self, question: str) -> bool:
        self.asked.append(question)
        return self.answer

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


MUTATING = ("create_", "stop_", "start_", "modify_", "attach_", "detach_", "delete_")


class RecordingEc2:
    """Wraps a boto3 EC2 client; mutating calls go to `events` as `ec2:<name>`."""

    def __init__(self, client: Any, events: Events):
        self._client, self._events = client, events

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if callable(attr) and name.startswith(MUTATING):
            def call(*args: Any, **kwargs: Any) -> Any:
                self._events.add(f"ec2:{name}")
                return attr(*args, **kwargs)
            return call
        return attr


class SlowEc2:
    """Reports a resource as still in `slow_state` for its first `times` describes
    (forever when times is None) — moto's transitions are instant, AWS's are not."""

    def __init__(self, client: Any, method: str, patch, times: int | None):
        self._client, self._method, self._patch, self._left = client, method, patch, times
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name != self._method:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            result = attr(*args, **kwargs)
            if self._left is None or self._left > 0:
                if self._left is not None:
                    self._left -= 1
                self._patch(result)
            return result
        return call


class FakeClock(Clock):
    """Time that moves only when slept; records every delay."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []
        super().__init__(now=lambda: self.t, sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


@dataclass
class StubBackup:
    """AWS Backup as moto lacks it: jobs pass through `states` then complete."""

    states: list[str] = field(default_factory=lambda: ["CREATED", "RUNNING", "COMPLETED"])
    points: list[RecoveryPoint] = field(default_factory=list)
    started: list[dict] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _polls: dict[str, int] = field(default_factory=dict)

    def start_backup(self, *, vault: str, resource_arn: str, role_arn: str) -> str:
        job_id = f"job-{next(self._ids)}"
        self.started.append({"vault": vault, "resource_arn": resource_arn, "role_arn": role_arn,
                             "job_id": job_id})
        self._polls[job_id] = 0
        return job_id

    def job(self, job_id: str) -> BackupJob:
        n = self._polls[job_id]
        self._polls[job_id] = n + 1
        state = self.states[min(n, len(self.states) - 1)]
        arn = None
        if state == "COMPLETED":
            arn = f"arn:aws:ec2:us-east-1::snapshot/snap-{job_id}"
            start = next(s for s in self.started if s["job_id"] == job_id)
            if not any(p.arn == arn for p in self.points):
                self.points.append(RecoveryPoint(arn, start["resource_arn"],
                                                 datetime.now(UTC), "COMPLETED", 5 * 2**30))
        return BackupJob(job_id, state, "100" if state == "COMPLETED" else "", arn)

    def recovery_points(self, *, vault: str, resource_arn: str | None) -> list[RecoveryPoint]:
        return sorted((p for p in self.points if resource_arn in (None, p.resource_arn)),
                      key=lambda p: p.created, reverse=True)
