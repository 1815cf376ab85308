"""The one tuning rule set: PostgreSQL settings from RAM and CPUs, the way timescaledb-tune does.

Both consumers read it: the timescaledb role (its filter plugin loads this file by path and
renders the result into conf.d/lighthouse.conf) and `invoke db.tune` (which compares a live
server with it). Keep it free of imports beyond the standard library so Ansible can load it.

The rules follow timescaledb-tune's pkg/pgtune (memory.go, parallel.go, wal.go, misc.go):
shared_buffers = RAM/4, effective_cache_size = 3/4 RAM, maintenance_work_mem = 128 MB per
GB of RAM capped at 2047 MB, work_mem = GB * (6.4 * 20 MB / max_connections) / round(cpus/2),
max_worker_processes = 3 + background workers + cpus, and so on. Values are formatted like
timescaledb-tune's BytesToPGFormat (largest unit that divides evenly to 1/1000, else the next
smaller unit). The role renders these through a template instead of letting timescaledb-tune
append to postgresql.conf, which keeps the role idempotent; explicit overrides win.
max_worker_processes keeps room for TimescaleDB's background workers (timescaledb.max_background_
workers) on top of PostgreSQL's own and the parallel workers.
"""

from __future__ import annotations

import math

KB = 1 << 10
MB = 1 << 20
GB = 1 << 30
TB = 1 << 40

MAINTENANCE_WORK_MEM_LIMIT = 2047 * MB
WORK_MEM_PER_GIG_PER_CONN = 6.4 * 20  # timescaledb-tune: derived from pgtune results
MIN_BUILT_IN_PROCESSES = 3
DEFAULT_BACKGROUND_WORKERS = 8
DEFAULT_MAX_CONNECTIONS = 100
WAL_BUFFERS_THRESHOLD = 2 * GB
WAL_BUFFERS_DEFAULT = 16 * MB
DEFAULT_MAX_WAL_BYTES = 1 * GB


def _go_round(value: float) -> int:
    """Go's math.Round: halves away from zero (Python's round() is banker's rounding)."""
    return int(math.floor(value + 0.5))


def pg_bytes(nbytes: int | float) -> str:
    """Format a byte count as PostgreSQL text exactly like timescaledb-tune's BytesToPGFormat."""
    nbytes = int(nbytes)
    if nbytes <= 0:
        raise ValueError(f"bytes must be at least 1 byte (got {nbytes})")
    units = ((TB, "TB"), (GB, "GB"), (MB, "MB"), (KB, "kB"))
    found = next(((d, u) for d, u in units if nbytes >= d), None)
    if found is None:  # nothing below 1kB
        return "1kB"
    divisor, unit = found
    val = nbytes / divisor
    if unit == "kB":
        return f"{_go_round(val)}kB"
    if val - int(val) > 0.001:
        val *= 1024
        unit = {"TB": "GB", "GB": "MB", "MB": "kB"}[unit]
    return f"{int(val)}{unit}"


def timescaledb_tune(
    memory_mb: int,
    cpus: int,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    background_workers: int = DEFAULT_BACKGROUND_WORKERS,
    wal_disk_bytes: int = 0,
    overrides: dict | None = None,
) -> dict[str, str]:
    """Return postgresql.conf settings for a host with memory_mb MiB of RAM and cpus CPUs."""
    if memory_mb <= 0 or cpus <= 0:
        raise ValueError(f"memory_mb and cpus must be positive (got {memory_mb}, {cpus})")
    total = int(memory_mb) * MB
    conns = int(max_connections) or DEFAULT_MAX_CONNECTIONS
    gigs = total / GB
    settings: dict[str, str] = {
        "shared_buffers": pg_bytes(total // 4),
        "effective_cache_size": pg_bytes(total * 3 // 4),
        "maintenance_work_mem": pg_bytes(min(gigs * 128 * MB, MAINTENANCE_WORK_MEM_LIMIT)),
        "work_mem": pg_bytes(
            gigs * (WORK_MEM_PER_GIG_PER_CONN * MB / conns) / max(_go_round(cpus / 2), 1)
        ),
        "max_connections": str(max(conns, DEFAULT_MAX_CONNECTIONS)),
        "timescaledb.max_background_workers": str(background_workers),
        "max_worker_processes": str(MIN_BUILT_IN_PROCESSES + background_workers + cpus),
        "wal_buffers": pg_bytes(gigs * 7864 * KB if total < WAL_BUFFERS_THRESHOLD
                                else WAL_BUFFERS_DEFAULT),
        "checkpoint_completion_target": "0.9",
        "default_statistics_target": "500",
        "random_page_cost": "1.1",
        "effective_io_concurrency": "200",
        "max_locks_per_transaction": _max_locks(total),
    }
    max_wal = _max_wal_bytes(wal_disk_bytes)
    settings["max_wal_size"] = pg_bytes(max_wal)
    settings["min_wal_size"] = pg_bytes(max_wal // 2)
    # timescaledb-tune gives no parallelism advice for a single CPU.
    if cpus > 1:
        settings["max_parallel_workers"] = str(cpus)
        settings["max_parallel_workers_per_gather"] = str(_go_round(cpus / 2))
    for key, value in (overrides or {}).items():
        settings[key] = str(value)
    return settings


def _max_locks(total: int) -> str:
    for limit_gb, value in ((32, "512"), (16, "256"), (8, "128")):
        if total >= limit_gb * GB:
            return value
    return "64"


def _max_wal_bytes(wal_disk_bytes: int) -> int:
    if not wal_disk_bytes:
        return DEFAULT_MAX_WAL_BYTES
    segment = 16 * MB
    top = int(wal_disk_bytes) * 60 // 100
    if top % segment:
        top = (top // segment + 1) * segment
    return top
