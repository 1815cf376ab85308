"""RPO after a PostgreSQL restart: the segment being written when the server restarts reaches
the pgBackRest repository on archive_timeout (60 s), not on the first timed checkpoint
(checkpoint_timeout, 5 min), which is what PostgreSQL does unless the checkpointer is woken
after start (roles/pgbackrest/templates/archive-wake.conf.j2)."""

from __future__ import annotations

import time

from tests.hosts.deploy_support import psql

CHECKPOINT_TIMEOUT_S = 300
DEADLINE_S = 150  # archive_timeout 60 s + the push, well short of CHECKPOINT_TIMEOUT_S


def test_wal_is_archived_within_archive_timeout_after_a_restart(site, sandbox) -> None:
    sandbox.ssh("db-1", "systemctl restart postgresql@17-main")
    started = time.monotonic()
    [[segment]] = psql(sandbox, "SELECT pg_walfile_name(pg_current_wal_lsn())", "postgres")
    archived = ""
    while time.monotonic() - started < DEADLINE_S:  # bounded: 150 s, a poll every 2 s
        [[archived]] = psql(sandbox, "SELECT coalesce(last_archived_wal, '')"
                                     " FROM pg_stat_archiver", "postgres")
        if archived[:24] >= segment:
            break
        time.sleep(2)
    waited = time.monotonic() - started
    print(f"segment {segment} archived after {waited:.0f} s")
    assert archived[:24] >= segment, (
        f"{segment} not archived {DEADLINE_S} s after the restart (last {archived!r}): the "
        f"checkpointer is sleeping until checkpoint_timeout ({CHECKPOINT_TIMEOUT_S} s)")
