"""Fixtures for the prober service's integration tests (real PostgreSQL 15, local servers)."""

from __future__ import annotations

import io
import uuid

import psycopg
import pytest
from lighthouse.db.migrate import migrate
from psycopg.types.json import Jsonb


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
