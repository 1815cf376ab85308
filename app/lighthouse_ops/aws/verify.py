"""Post-change checks: PostgreSQL answers and the prober is healthy.

Injectable so runbook tests can decide the outcome; the real one polls (the database may
still be replaying WAL right after a start) with the same waiter as the AWS steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx
import psycopg

from lighthouse_ops.aws.waiters import Backoff, Clock, WaitTimeout, wait_until


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


class VerificationFailed(RuntimeError):
    def __init__(self, checks: list[Check]):
        bad = "; ".join(f"{c.name}: {c.detail}" for c in checks if not c.ok)
        super().__init__(f"verification failed: {bad}")
        self.checks = checks


class Verifier(Protocol):
    def verify(self) -> list[Check]: ...


def require_ok(verifier: Verifier) -> str:
    """Run the checks; raise VerificationFailed unless all pass, else a one-line result."""
    checks = verifier.verify()
    if not all(c.ok for c in checks):
        raise VerificationFailed(checks)
    return ", ".join(f"{c.name} ok ({c.detail})" for c in checks) or "no checks configured"


@dataclass
class ServiceVerifier:
    """PostgreSQL via `SELECT version()` on `dsn`; the prober via GET `prober_url` (/health)."""

    dsn: str | None = None
    prober_url: str | None = None
    backoff: Backoff = Backoff(timeout_s=180, initial_s=1, max_s=10)
    clock: Clock | None = None

    def _postgres(self, dsn: str) -> Check:
        def probe() -> str:
            try:
                with psycopg.connect(dsn, connect_timeout=5) as conn:
                    row = conn.execute("SELECT current_setting('server_version')").fetchone()
                return f"ok:PostgreSQL {row[0] if row else '?'}"
            except psycopg.Error as exc:
                return f"error:{str(exc).strip().splitlines()[0]}"

        return self._poll("postgresql", probe)

    def _prober(self) -> Check:
        def probe() -> str:
            try:
                resp = httpx.get(str(self.prober_url), timeout=5)
            except httpx.HTTPError as exc:
                return f"error:{type(exc).__name__}: {exc}"
            if resp.status_code != 200:
                return f"error:HTTP {resp.status_code}"
            return f"ok:HTTP 200 from {self.prober_url}"

        return self._poll("prober", probe)

    def _poll(self, name: str, probe) -> Check:
        try:
            state = wait_until(probe, what=name, done=lambda s: s.startswith("ok:"),
                               backoff=self.backoff, clock=self.clock)
        except WaitTimeout as exc:
            return Check(name, False, exc.last_state.removeprefix("error:"))
        return Check(name, True, state.removeprefix("ok:"))

    def verify(self) -> list[Check]:
        checks = []
        if self.dsn:
            checks.append(self._postgres(self.dsn))
        if self.prober_url:
            checks.append(self._prober())
        return checks


@dataclass
class HostVerifier:
    """Checks run *on* the hosts through Ansible (the database port is closed to the
    controller on AWS): `pg_isready` on the db host, GET /health on each prober host."""

    run_adhoc: Callable[[str, str, str], str]  # (host pattern, module, args) -> stdout
    db_host: str = "db"
    prober_host: str = "prober"
    prober_port: int = 8080
    backoff: Backoff = Backoff(timeout_s=180, initial_s=2, max_s=15)
    clock: Clock | None = None

    def _poll(self, name: str, host: str, module: str, args: str, detail: str) -> Check:
        def probe() -> str:
            try:
                self.run_adhoc(host, module, args)
            except RuntimeError as exc:
                return "error:" + (str(exc).strip().splitlines() or ["failed"])[-1][:200]
            return "ok:" + detail

        try:
            state = wait_until(probe, what=name, done=lambda s: s.startswith("ok:"),
                               backoff=self.backoff, clock=self.clock)
        except WaitTimeout as exc:
            return Check(name, False, exc.last_state.removeprefix("error:"))
        return Check(name, True, state.removeprefix("ok:"))

    def verify(self) -> list[Check]:
        return [
            self._poll("postgresql", self.db_host, "ansible.builtin.command",
                       "pg_isready -q", f"pg_isready on {self.db_host}"),
            self._poll("prober", self.prober_host, "ansible.builtin.uri",
                       f"url=http://127.0.0.1:{self.prober_port}/health status_code=200",
                       f"/health 200 on {self.prober_host}"),
        ]
