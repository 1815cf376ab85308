"""Fixtures for the prober service's integration tests (real PostgreSQL 15, local servers)."""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from lighthouse.db.migrate import migrate
from lighthouse.metrics import Metrics
from lighthouse.web.server import WebApp
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool


@pytest.fixture
def lh_dsn(pg15_db) -> str:
    """A fresh database with the real migrations applied."""
    migrate(pg15_db, out=io.StringIO())
    return pg15_db


def add_monitor(dsn: str, name: str, config: dict, *, type_: str = "http", interval: int = 60,
                status: str = "active") -> uuid.UUID:
    with psycopg.connect(dsn, autocommit=True) as conn:
        user = conn.execute("INSERT INTO users (display_name) VALUES ('test') "
                            "RETURNING id").fetchone()[0]
        return conn.execute(
            "INSERT INTO subscriptions (user_id, name, target_type, target_config, "
            "check_interval_seconds, status) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (user, name, type_, Jsonb(config), interval, status)).fetchone()[0]


def add_channel(dsn: str, subscription_id: uuid.UUID, channel_type: str, config: dict,
                min_severity: str = "info") -> uuid.UUID:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "INSERT INTO alert_channels (subscription_id, channel_type, channel_config, "
            "min_severity) VALUES (%s, %s, %s, %s) RETURNING id",
            (subscription_id, channel_type, Jsonb(config), min_severity)).fetchone()[0]


def scalar(dsn: str, sql: str, params: tuple = ()):
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchone()[0]


@contextlib.contextmanager
def serve_web(dsn: str, **kwargs: Any) -> Iterator[str]:
    """The prober's web server (status page, monitor pages, API) on a free loopback port over a
    real pool; yields its base URL."""
    pool = ConnectionPool(dsn, min_size=1, max_size=4, open=True)
    app = WebApp(metrics=Metrics(), health=lambda: {"status": "ok"}, pool=pool, **kwargs)
    port = app.start("127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        app.stop()
        pool.close()
