"""pg_dump-based backups against a real PostgreSQL 15: dump, restore, verify, corruption."""

from __future__ import annotations

import psycopg
import pytest
from lighthouse_ops.backup import dump as d
from lighthouse_ops.backup.plan import Aborted
from psycopg.conninfo import make_conninfo


def _seed(dsn: str, rows: int = 1500) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE subs (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "
                     "name text NOT NULL, cfg jsonb)")
        conn.execute("CREATE TABLE hist (time timestamptz NOT NULL, sub int NOT NULL, "
                     "latency double precision, UNIQUE (sub, time))")
        conn.execute("CREATE TABLE nokey (v text)")
        conn.execute("INSERT INTO subs (name, cfg) SELECT 'm' || g, jsonb_build_object('n', g) "
                     "FROM generate_series(1, 50) g")
        conn.execute("INSERT INTO hist SELECT now() - g * interval '1 minute', g %% 7, g / 3.0 "
                     "FROM generate_series(1, %s) g", (rows,))
        conn.execute("INSERT INTO nokey SELECT md5(g::text) FROM generate_series(1, 20) g")


@pytest.fixture
def dumped(pg15_db, tmp_path):
    _seed(pg15_db)
    out = tmp_path / "lh.dump"
    manifest = d.dump(pg15_db, out)
    return pg15_db, out, manifest


def test_dump_writes_manifest_with_snapshot_fingerprint(dumped):
    _, out, manifest = dumped
    assert out.exists() and d.manifest_path(out).exists()
    assert manifest.sha256 == d.sha256_file(out)
    assert manifest.tables["public.hist"]["rows"] == 1500
    assert manifest.tables["public.subs"]["rows"] == 50
    assert set(manifest.tables) == {"public.hist", "public.subs", "public.nokey"}


def test_restore_dump_into_new_database_matches_source(dumped, pg15):
    _, out, _ = dumped
    target = pg15.dsn("restored_new")
    with psycopg.connect(pg15.dsn(), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS restored_new")
    result = d.restore_dump(out, target, yes=False)  # a new database needs no confirmation
    assert result.differences == []
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM hist").fetchone()[0] == 1500


def test_restore_over_existing_database_needs_confirmation(dumped):
    src, out, _ = dumped
    with psycopg.connect(src, autocommit=True) as conn:
        conn.execute("DELETE FROM hist WHERE sub = 3")  # the accident
    with pytest.raises(Aborted):
        d.restore_dump(out, src, interactive=False)
    with pytest.raises(Aborted):
        d.restore_dump(out, src, ask=lambda _: "no")
    dry = d.restore_dump(out, src, dry_run=True)
    assert not dry.applied
    with psycopg.connect(src) as conn:  # nothing changed so far
        assert conn.execute("SELECT count(*) FROM hist").fetchone()[0] < 1500
    result = d.restore_dump(out, src, ask=lambda _: "yes")
    assert result.differences == []
    with psycopg.connect(src) as conn:
        assert conn.execute("SELECT count(*) FROM hist").fetchone()[0] == 1500


def test_verify_dump_passes_and_drops_scratch(dumped, pg15):
    _, out, _ = dumped
    result = d.verify_dump(out, pg15.dsn(), yes=True)
    assert result.ok, result.differences
    assert result.rows == 1570
    with psycopg.connect(pg15.dsn()) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                            (result.scratch,)).fetchone()[0] == 0


def test_verify_catches_truncated_dump(dumped, pg15):
    _, out, _ = dumped
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    with pytest.raises(d.CorruptBackup, match="truncated"):
        d.verify_dump(out, pg15.dsn(), yes=True)


def test_verify_catches_corrupt_dump_even_with_a_forged_manifest(dumped, pg15):
    _, out, manifest = dumped
    data = bytearray(out.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
    out.write_bytes(bytes(data))
    with pytest.raises(d.CorruptBackup, match="SHA-256"):
        d.verify_dump(out, pg15.dsn(), yes=True)
    # Someone "fixes" the manifest checksum: the content check must still fail.
    manifest.sha256 = d.sha256_file(out)
    manifest.write(d.manifest_path(out))
    result = d.verify_dump(out, pg15.dsn(), yes=True)
    assert not result.ok


def test_verify_catches_a_dump_that_lost_rows(dumped, pg15, tmp_path):
    src, out, manifest = dumped
    # A dump taken later, after rows vanished, paired with the earlier manifest's fingerprint.
    with psycopg.connect(src, autocommit=True) as conn:
        conn.execute("DELETE FROM hist WHERE sub = 5")
    later = tmp_path / "later.dump"
    d.dump(src, later)
    later_manifest = d.Manifest.read(d.manifest_path(later))
    manifest.file, manifest.bytes, manifest.sha256 = (later.name, later_manifest.bytes,
                                                      later_manifest.sha256)
    manifest.write(d.manifest_path(later))
    result = d.verify_dump(later, pg15.dsn(), yes=True)
    assert not result.ok
    assert any("public.hist: row count" in x for x in result.differences)


def test_dump_is_consistent_under_concurrent_writes(pg15_db, tmp_path):
    _seed(pg15_db, rows=200)
    out = tmp_path / "c.dump"
    manifest = d.dump(pg15_db, out)
    with psycopg.connect(pg15_db, autocommit=True) as conn:
        conn.execute("INSERT INTO nokey VALUES ('after')")
    target = make_conninfo(pg15_db, dbname="restored_c")
    result = d.restore_dump(out, target, yes=True)
    assert result.differences == []
    assert manifest.tables["public.nokey"]["rows"] == 20


def _databases(dsn: str) -> set[str]:
    with psycopg.connect(make_conninfo(dsn, dbname="postgres")) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped", "empty"])
def test_a_bad_file_without_a_manifest_never_touches_the_target(dumped, tmp_path, damage):
    """The case that emptied a database: a truncated dump without its manifest passed
    `pg_restore -l`, the target was dropped, then the restore failed."""
    src, out, _ = dumped
    data = out.read_bytes()
    bad = tmp_path / f"{damage}.dump"  # no manifest beside it
    if damage == "truncated":
        bad.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "bit-flipped":
        flipped = bytearray(data)
        for i in range(len(flipped) // 2, len(flipped) // 2 + 64):
            flipped[i] ^= 0xFF
        bad.write_bytes(bytes(flipped))
    else:
        bad.write_bytes(b"")
    before = _databases(src)
    with pytest.raises(d.BackupError):
        d.restore_dump(bad, src, yes=True)
    with psycopg.connect(src) as conn:  # every row still there, nothing half-restored
        assert conn.execute("SELECT count(*) FROM hist").fetchone()[0] == 1500
        assert conn.execute("SELECT count(*) FROM subs").fetchone()[0] == 50
    assert _databases(src) == before  # the staging copy is gone too


def test_a_copy_that_differs_from_its_manifest_does_not_replace_the_target(dumped, tmp_path):
    src, out, manifest = dumped
    with psycopg.connect(src, autocommit=True) as conn:
        conn.execute("INSERT INTO subs (name) VALUES ('added after the dump')")
    forged = d.Manifest(**{**manifest.__dict__,
                           "tables": {**manifest.tables,
                                      "public.subs": {**manifest.tables["public.subs"],
                                                      "rows": 999}}})
    forged.write(d.manifest_path(out))
    result = d.restore_dump(out, src, yes=True)
    assert not result.applied and any("public.subs" in x for x in result.differences)
    with psycopg.connect(src) as conn:
        assert conn.execute("SELECT count(*) FROM subs").fetchone()[0] == 51  # untouched


def test_a_timescaledb_dump_is_refused_by_a_server_without_the_extension(dumped, pg15,
                                                                          monkeypatch):
    """PostgreSQL 15 here has no timescaledb: a dump whose contents list the extension (the
    table of contents is the one stand-in: no TimescaleDB server to dump from here) is refused
    before anything is created, with what to do instead; the target keeps its data."""
    src, out, _ = dumped
    real = d.list_contents
    monkeypatch.setattr(d, "list_contents", lambda f, b: real(f, b) + (
        "3; 3079 17000 EXTENSION - timescaledb\n"))
    with psycopg.connect(pg15.dsn(), autocommit=True) as conn:
        before = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    with pytest.raises(d.BackupError, match="dumped from TimescaleDB.*no timescaledb extension"):
        d.restore_dump(out, src, yes=True)
    with psycopg.connect(pg15.dsn(), autocommit=True) as conn:
        after = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    assert after == before  # no staging database left behind
    with psycopg.connect(src) as conn:
        assert conn.execute("SELECT count(*) FROM hist").fetchone()[0] == 1500
