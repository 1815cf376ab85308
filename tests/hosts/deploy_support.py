"""site.yml converged once per test session on the shared `pytest` sandbox, for the
test_converge_* and test_infra_* modules (each module asks through a thin fixture; the work
is cached here, so it happens once however many modules ask)."""

from __future__ import annotations

import atexit
from dataclasses import dataclass

from lighthouse_ops.deploy import demo, s3
from lighthouse_ops.deploy.ansible_run import PlaybookResult
from lighthouse_ops.deploy.local import LocalDeployment, converge, prepare_sandbox
from lighthouse_ops.sandbox import Sandbox


@dataclass
class Converged:
    dep: LocalDeployment
    first: PlaybookResult
    second: PlaybookResult


_CACHE: dict[str, Converged] = {}


def converged_site(sandbox: Sandbox) -> Converged:
    if sandbox.name not in _CACHE:
        # The session's sandbox fixture does not know the S3 the deploy starts: stop it at exit.
        atexit.register(s3.stop_s3, sandbox)
        dep = prepare_sandbox(sandbox)
        first = converge(dep, echo=False)
        demo.ensure_demo(dep, echo=False)
        second = converge(dep, echo=False, check=False)
        _CACHE[sandbox.name] = Converged(dep=dep, first=first, second=second)
    return _CACHE[sandbox.name]


def psql(sandbox: Sandbox, sql: str, database: str = "lighthouse") -> list[list[str]]:
    out = demo.psql(sandbox, "db-1", sql, database)
    return [line.split("|") for line in out.splitlines() if line.strip()]
