"""Lighthouse database layer: migrations, capability levels, maintenance, rollups, queries.

Public API (see docs/schema.md):
    lighthouse.db.migrate:     migrate, ensure_schema, schema_status, detect_capability
    (`lighthouse.db.migrate` is the module; import the functions from it)
    lighthouse.db.maintenance: run_maintenance
    lighthouse.db.compaction:  compact, plan, bytes_per_check (old history packed)
    lighthouse.db.rollups:     refresh_rollups
    lighthouse.db.queries:     subscription_stats, summary, daily_uptime, recent_checks, ...
    lighthouse.db.histogram:   BOUNDS, bucket_index, percentile
"""

from lighthouse.db.capability import Capability, detect_capability
from lighthouse.db.errors import (
    ChecksumMismatchError,
    DatabaseError,
    DatabaseUnreachableError,
    LockTimeoutError,
    MigrationError,
    PrivilegeError,
    SchemaOutdatedError,
    SchemaTooNewError,
    TimescaleNotPreloadedError,
    UnsupportedServerError,
)

__all__ = [
    "Capability", "ChecksumMismatchError", "DatabaseError", "DatabaseUnreachableError",
    "LockTimeoutError", "MigrationError", "PrivilegeError", "SchemaOutdatedError",
    "SchemaTooNewError", "TimescaleNotPreloadedError", "UnsupportedServerError",
    "detect_capability",
]
