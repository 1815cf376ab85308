"""`lighthouse-dump`: the weekly logical dump a database host's systemd timer runs.

pg_dump -Fc with its manifest (backup.dump), uploaded multipart with SHA-256 checksums
(backup.s3) under `<prefix><database>-<UTC time>.dump`, then local copies beyond --keep-local
removed. The bucket's lifecycle rule expires `dumps/` (365 days in prod). One line per outcome
goes to the journal; exit 1 with the reason on any failure, so the unit fails visibly.

On a Patroni cluster every member has the timer and only the primary dumps: a standby logs
that it skipped and exits 0 (a dump from a standby can be cancelled by replay, and three
members would upload three copies).

Runs as the cluster's owner over the local socket (peer authentication, no password). S3
endpoint, CA bundle, region and keys come from boto3's own environment variables
(AWS_ENDPOINT_URL, AWS_CA_BUNDLE, AWS_DEFAULT_REGION; on EC2 the instance role).
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from lighthouse_ops.backup.dump import MANIFEST_SUFFIX, BackupError, dump
from lighthouse_ops.backup.s3 import S3Url, upload

log = logging.getLogger("lighthouse.dump")


def s3_client(path_style: bool):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(
        s3={"addressing_style": "path" if path_style else "auto"},
        retries={"mode": "standard", "max_attempts": 5}))


def prune_local(directory: Path, database: str, keep: int) -> list[Path]:
    """Remove all but the newest `keep` dumps of `database` (and their manifests)."""
    dumps = sorted(directory.glob(f"{database}-*.dump"))
    gone = dumps[:-keep] if keep else dumps
    for path in gone:
        path.unlink(missing_ok=True)
        path.with_name(path.name + MANIFEST_SUFFIX).unlink(missing_ok=True)
    return gone


def _dsn(socket_dir: str, port: int, database: str) -> str:
    return f"host={socket_dir} port={port} dbname={database}"


def is_standby(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    except psycopg.Error as exc:
        raise BackupError(f"cannot reach PostgreSQL: {str(exc).strip()}") from None
    return bool(row and row[0])


def run(database: str, directory: Path, url: str, *, keep_local: int, path_style: bool,
        socket_dir: str = "/var/run/postgresql", port: int = 5432) -> list[str]:
    """Dump, upload, prune; the uploaded URLs ([] on a standby: nothing done)."""
    S3Url.parse(url)  # a bad URL fails before minutes of pg_dump
    if is_standby(_dsn(socket_dir, port, database)):
        log.info("event=dump_skipped database=%s reason=standby", database)
        return []
    out = directory / f"{database}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.dump"
    manifest = dump(_dsn(socket_dir, port, database), out)
    urls = upload(out, url, s3_client(path_style))
    log.info("event=dump_uploaded database=%s bytes=%d sha256=%s url=%s", database,
             manifest.bytes, manifest.sha256, urls[0])
    prune_local(directory, database, keep_local)
    return urls


def _keep(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lighthouse-dump", description=__doc__.split("\n")[0],
                                epilog="exit codes: 0 uploaded (or skipped on a standby), "
                                       "1 failed (reason on stderr), 2 bad arguments")
    p.add_argument("--database", default="lighthouse", help="database to dump")
    p.add_argument("--dir", type=Path, required=True, help="local directory for the dump files")
    p.add_argument("--upload", required=True, help="S3 prefix, e.g. s3://bucket/dumps/")
    p.add_argument("--keep-local", type=_keep, default=1,
                   help="newest local dumps to keep after upload (default 1; 0 keeps none)")
    p.add_argument("--path-style", action="store_true",
                   help="path-style S3 URLs (an S3 endpoint addressed by IP, e.g. the sandbox)")
    p.add_argument("--port", type=int, default=5432, help="PostgreSQL port (local socket)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        urls = run(args.database, args.dir, args.upload, keep_local=args.keep_local,
                   path_style=args.path_style, port=args.port)
    except (BackupError, ValueError, OSError) as exc:
        print(f"lighthouse-dump: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # boto3/botocore errors: one line, not a traceback  # noqa: BLE001
        print(f"lighthouse-dump: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if not urls:
        print("lighthouse-dump: skipped: this server is a standby (the primary dumps)")
        return 0
    print("lighthouse-dump: uploaded " + " ".join(urls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
