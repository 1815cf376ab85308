"""What every AWS runbook is given: clients, host operations, verifier, console, timing."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lighthouse_ops.aws.hostops import HostOps
from lighthouse_ops.aws.runbook import Console, TerminalConsole
from lighthouse_ops.aws.verify import Verifier
from lighthouse_ops.aws.waiters import Backoff, Clock

DEFAULT_REGION = "us-east-1"


def ec2_client(region: str | None = None, endpoint_url: str | None = None) -> Any:
    """boto3 EC2 client; AWS_ENDPOINT_URL (boto3's own setting) points it at moto or a proxy."""
    import boto3

    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return boto3.client("ec2", region_name=region or DEFAULT_REGION, endpoint_url=endpoint_url)


@dataclass
class AwsRun:
    ec2: Any
    host_ops: HostOps | None = None
    verifier: Verifier | None = None
    console: Console = field(default_factory=TerminalConsole)
    backoff: Backoff = field(default_factory=Backoff)
    clock: Clock | None = None

    def progress(self, what: str) -> Callable[[str, float], None]:
        """A waiter callback printing `what: state (Ns)` when the state changes or every poll."""
        last: list[str] = []

        def report(state: str, waited: float) -> None:
            if not last or last[-1] != state or waited >= 10:
                self.console.progress(f"{what}: {state} ({waited:.0f}s)")
            last.append(state)

        return report

    def waits(self, what: str) -> dict[str, Any]:
        """Keyword arguments for the waiters in lighthouse_ops.aws.waiters."""
        return {"backoff": self.backoff, "clock": self.clock, "on_poll": self.progress(what)}

    def need_host_ops(self) -> HostOps:
        if self.host_ops is None:
            raise RuntimeError("this runbook needs host operations (pass --inventory)")
        return self.host_ops
