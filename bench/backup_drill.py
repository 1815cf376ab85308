"""RPO/RTO of pgBackRest PITR on a sandbox database host: runs the restore drill and prints
the figures recorded in docs/benchmarks.md ("Backup and restore").

    .venv/bin/python bench/backup_drill.py --inventory inventories/local --host db-1

Needs a converged sandbox with pgBackRest on (./scripts/deploy-local). The drill DISCARDS
everything written on the host after its noted time (seconds before the restore): never point
it at a database you care about.
"""

from __future__ import annotations

import argparse
import json
import time

from lighthouse_ops.backup.drill import psql_on, run_drill
from lighthouse_ops.backup.pgbackrest import PgBackRest
from lighthouse_ops.backup.remote import runner_from_inventory


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--inventory", default="inventories/local")
    p.add_argument("--host", default="db-1")
    p.add_argument("--rows", type=int, default=500)
    args = p.parse_args()
    runner = runner_from_inventory(args.inventory, args.host)
    pgbr = PgBackRest(runner)
    r = run_drill(psql_on(runner), args.inventory, args.host, rows_before=args.rows,
                  extra_vars={"pgbackrest_restore_full_backup": False})
    t0 = time.monotonic()
    full = pgbr.backup("full")
    timeout = psql_on(runner)("SHOW archive_timeout")
    print(json.dumps({"drill_ok": r.ok, "rows_before": r.rows_before,
                      "rows_at_accident": r.rows_at_accident, "restored_rows": r.restored_rows,
                      "archive_timeout": timeout, "wal_push_s": round(r.archive_push_s, 2),
                      "rto_pitr_s": round(r.rto_s, 1),
                      "full_backup_s": round(time.monotonic() - t0, 1),
                      "database_bytes": full.size, "stored_bytes": full.repo_size}))


if __name__ == "__main__":
    main()
