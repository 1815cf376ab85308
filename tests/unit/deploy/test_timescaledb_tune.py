"""The one tuning rule set (dbops/tuning.py) against timescaledb-tune's own test values."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location(
    "timescaledb_tune", ROOT / "app/lighthouse_ops/dbops/tuning.py")
assert _spec and _spec.loader
tune_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tune_mod)
tune = tune_mod.timescaledb_tune
pg_bytes = tune_mod.pg_bytes

GB_MB = 1024


@pytest.mark.parametrize(("nbytes", "text"), [
    (1, "1kB"),
    (1024, "1kB"),
    (2 * 1024**3, "2GB"),
    (int(2.5 * 1024**3), "2560MB"),
    (int(7.5 * 1024**3), "7680MB"),
    (1536, "2kB"),  # kB values round half away from zero, like Go's math.Round
])
def test_pg_bytes_matches_timescaledb_tune_format(nbytes, text):
    assert pg_bytes(nbytes) == text


def test_memory_rules_from_timescaledb_tune_tests():
    # memory_test.go: shared_buffers 10GB -> 2560MB, 8GB -> 2GB; effective_cache 10GB -> 7680MB,
    # 12GB -> 9GB; maintenance_work_mem 6GB -> 768MB, 32GB -> capped at 2047MB.
    assert tune(10 * GB_MB, 1)["shared_buffers"] == "2560MB"
    assert tune(8 * GB_MB, 1)["shared_buffers"] == "2GB"
    assert tune(10 * GB_MB, 1)["effective_cache_size"] == "7680MB"
    assert tune(12 * GB_MB, 1)["effective_cache_size"] == "9GB"
    assert tune(6 * GB_MB, 1)["maintenance_work_mem"] == "768MB"
    assert tune(32 * GB_MB, 1)["maintenance_work_mem"] == "2047MB"


def test_work_mem_scales_with_connections_and_cpus():
    # memory_test.go (20 connections): 8GB 1 CPU -> 52428kB, 8GB 4 CPUs -> 26214kB.
    assert tune(8 * GB_MB, 1, max_connections=20)["work_mem"] == "52428kB"
    assert tune(8 * GB_MB, 4, max_connections=20)["work_mem"] == "26214kB"
    # Default 100 connections: five times smaller.
    assert tune(8 * GB_MB, 1)["work_mem"] == "10485kB"


def test_parallelism_and_workers():
    s = tune(4 * GB_MB, 4)
    assert s["max_worker_processes"] == str(3 + 8 + 4)
    assert s["max_parallel_workers"] == "4"
    assert s["max_parallel_workers_per_gather"] == "2"
    assert s["timescaledb.max_background_workers"] == "8"
    # 3 CPUs: round(1.5) = 2 (half away from zero, not banker's rounding)
    assert tune(4 * GB_MB, 3)["max_parallel_workers_per_gather"] == "2"
    # one CPU: timescaledb-tune gives no parallel advice
    assert "max_parallel_workers" not in tune(4 * GB_MB, 1)


def test_wal_and_misc():
    small = tune(1 * GB_MB, 2)
    assert small["wal_buffers"] == "7864kB"  # below 2GB: 7864kB per GB
    assert tune(4 * GB_MB, 2)["wal_buffers"] == "16MB"
    assert small["max_wal_size"] == "1GB" and small["min_wal_size"] == "512MB"
    # 10 GB WAL disk: 60 %, rounded up to a 16MB segment
    assert tune(4 * GB_MB, 2, wal_disk_bytes=10 * 1024**3)["max_wal_size"] == "6GB"
    assert tune(4 * GB_MB, 2, wal_disk_bytes=1000 * 1024**2)["max_wal_size"] == "608MB"
    assert tune(4 * GB_MB, 2)["max_locks_per_transaction"] == "64"
    assert tune(16 * GB_MB, 2)["max_locks_per_transaction"] == "256"
    assert small["random_page_cost"] == "1.1"


def test_overrides_win_and_bad_input_is_refused():
    s = tune(8 * GB_MB, 2, overrides={"shared_buffers": "1GB", "work_mem": "4MB"})
    assert s["shared_buffers"] == "1GB" and s["work_mem"] == "4MB"
    with pytest.raises(ValueError, match="memory_mb"):
        tune(0, 2)
