"""Backups and restores: logical dumps (pg_dump -Fc + manifest), pgBackRest (WAL archive, PITR),
verification by table fingerprints, and the restore drill.

Modules:
- `plan`: dry-run / plan display / confirmation shared by the destructive runbooks.
- `fingerprint`: per-table row counts and checksums of sampled ranges, and their comparison.
- `dump`: pg_dump with a manifest taken in the same snapshot; restore-dump; verify-dump.
- `s3`: upload/download of dump files with SHA-256 checksums.
- `pgbackrest`: command lines, `info` parsing, remote execution on a database host.
- `drill`: the PITR drill (write, note time, write, delete by accident, restore, prove).
"""
