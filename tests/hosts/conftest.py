"""Sandbox hosts for tests/hosts: one session-wide sandbox `pytest` with db-1 + prober-1.

Fixtures:
- `sandbox`: the running `lighthouse_ops.sandbox.Sandbox("pytest")` (inventory at
  `sandbox.inventory_path`, key at `sandbox.ssh_key`); torn down at session end.
- `sandbox_hosts`: {"db-1": Host, "prober-1": Host}.
- `host_connection`: factory, `host_connection("db-1")` -> testinfra Host over SSH.
- `db_host`, `prober_host`: testinfra Hosts for db-1 and prober-1.

The sandbox name is `pytest` unless LIGHTHOUSE_TEST_SANDBOX says otherwise (two people running
tests/hosts on one machine at once: give one of them another name). A session holds an fcntl
lock on its name, so a second session with the same name waits (up to 10 minutes) instead of
tearing down the first one's hosts. Tests that need their own sandbox use
`own_sandbox_name("suffix")`.

Skips (never fails) only when this machine cannot run sandbox hosts at all: not root, no
network namespaces, missing tools. With CI or LIGHTHOUSE_SANDBOX_REQUIRED set, that is an
error instead, so CI cannot hide a broken sandbox behind a skip.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lighthouse_ops.sandbox import CapabilityError, Host, Sandbox, check_capabilities, paths

from tests.hosts.deploy_support import Converged, converged_site

SANDBOX_NAME = os.environ.get("LIGHTHOUSE_TEST_SANDBOX", "pytest")
SESSION_WAIT_S = 600


def own_sandbox_name(suffix: str = "") -> str:
    """Name for a test's own sandbox, derived from the session's (so it is just as private)."""
    return f"{SANDBOX_NAME}-{suffix}" if suffix else SANDBOX_NAME


@contextlib.contextmanager
def session_lock(name: str) -> Iterator[None]:
    """Hold sandbox `name` for this test session; wait while another session holds it."""
    path = paths.STATE_ROOT / "locks" / f"{name}.session"
    path.parent.mkdir(parents=True, exist_ok=True)
    with Path(path).open("a+") as fh:
        deadline = time.monotonic() + SESSION_WAIT_S
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    fh.seek(0)
                    pytest.fail(f"sandbox {name!r} is held by another test session "
                                f"({fh.read().strip()}); set LIGHTHOUSE_TEST_SANDBOX=<other name>",
                                pytrace=False)
                time.sleep(2)
        fh.truncate(0)
        fh.write(f"pid {os.getpid()}\n")
        fh.flush()
        yield


def _required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("LIGHTHOUSE_SANDBOX_REQUIRED"))


def sandbox_capability_or_skip() -> None:
    try:
        check_capabilities()
    except CapabilityError as exc:
        if _required():
            pytest.fail(f"sandbox hosts required (CI) but unavailable: {exc}", pytrace=False)
        pytest.skip(f"this machine cannot run sandbox hosts: {exc}")


RESHAPING = ("tests/hosts/test_migrate_to_sandbox.py", "tests/hosts/test_fleet_sandbox.py",
             "tests/hosts/test_aws_rehearsal.py")


def pytest_collection_modifyitems(config, items):
    """Three modules reshape the shared sandbox: the move to another database (the prober left
    on prober-1's server, db-1 read-only), the fleet proof (more probers, other locations, fast
    monitors; its own converge points the probers back at db-1) and the AWS rehearsal (back to
    one prober; the stack's password, CA and location). They run in that order after every
    other host test, so none of those sees any of them."""
    fleet = sorted((i for i in items if i.nodeid.startswith(RESHAPING)),
                   key=lambda i: [k for k, m in enumerate(RESHAPING) if i.nodeid.startswith(m)])
    if not fleet:
        return
    rest = [i for i in items if i not in fleet]
    last = max((k for k, i in enumerate(rest) if i.nodeid.startswith("tests/hosts/")),
               default=-1)
    items[:] = rest[:last + 1] + fleet + rest[last + 1:]


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    sandbox_capability_or_skip()
    with session_lock(SANDBOX_NAME):
        sb = Sandbox(SANDBOX_NAME)
        sb.down()  # a crashed earlier run may have left hosts with state in them: start clean
        try:
            sb.up(db=1, prober=1)
            yield sb
        finally:
            sb.down()


@pytest.fixture(scope="session")
def sandbox_hosts(sandbox: Sandbox) -> dict[str, Host]:
    return {h.name: h for h in sandbox.hosts()}


@pytest.fixture(scope="session")
def host_connection(sandbox: Sandbox) -> Callable[[str], Any]:
    cache: dict[str, Any] = {}

    def connect(name: str) -> Any:
        if name not in cache:
            cache[name] = sandbox.testinfra_host(name)
        return cache[name]

    return connect


@pytest.fixture(scope="session")
def db_host(host_connection: Callable[[str], Any]) -> Any:
    return host_connection("db-1")


@pytest.fixture(scope="session")
def prober_host(host_connection: Callable[[str], Any]) -> Any:
    return host_connection("prober-1")


# site.yml converged on the shared sandbox (once per session: deploy_support caches it), and the
# hosts as testinfra sees them after that; a module that needs something else defines its own.
@pytest.fixture(scope="module")
def site(sandbox: Sandbox) -> Converged:
    return converged_site(sandbox)


@pytest.fixture(scope="module")
def db(site: Converged, db_host: Any) -> Any:
    return db_host


@pytest.fixture(scope="module")
def prober(site: Converged, prober_host: Any) -> Any:
    return prober_host
