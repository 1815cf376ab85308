"""Shared fixtures. Markers follow the folder: tests/unit, tests/integration, tests/hosts."""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path

import pytest

from tests.support.pgserver import PgServer

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    for item in items:
        part = Path(str(item.fspath)).relative_to(ROOT / "tests").parts[0]
        if part in ("unit", "integration", "hosts"):
            item.add_marker(getattr(pytest.mark, part))


@pytest.fixture(autouse=True)
def _root_logging_restored():
    """Code under test that sets up logging (`lighthouse run`, the runbooks' basicConfig)
    replaces the root handlers with one on this test's captured stderr; left behind, a later
    test's background thread (a websockets server logging "connection closed") writes to that
    closed stream and the traceback lands in whatever stderr a later test captures."""
    def ours(h: logging.Handler) -> bool:  # pytest's own capture handlers it manages itself
        return not type(h).__module__.startswith("_pytest")

    root = logging.getLogger()
    handlers, level = [h for h in root.handlers if ours(h)], root.level
    yield
    root.handlers[:] = [h for h in root.handlers if not ours(h)] + handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def pg15():
    """A real PostgreSQL 15 server (this machine's package) for the whole session."""
    server = PgServer.create()
    yield server
    server.destroy()


@pytest.fixture
def pg15_db(pg15, request) -> str:
    """A fresh, empty database on the session's PostgreSQL 15; returns its DSN."""
    name = "t_" + re.sub(r"\W", "_", request.node.name)[:40].lower() + "_" + uuid.uuid4().hex[:6]
    return pg15.create_database(name)
