"""Migration files compose per capability level; level-1 SQL is checked as text (it cannot
run on this machine: Debian ships only the Apache edition)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lighthouse.db.capability import Capability, ServerInfo, level_of
from lighthouse.db.errors import MigrationError
from lighthouse.db.migrations import load_migrations, sql_dir
from lighthouse.db.queries import plan_window


def sql_for(level: Capability) -> str:
    return "\n".join(m.sql for m in load_migrations(level))


def test_every_level_has_the_same_versions() -> None:
    versions = {lvl: [(m.version, m.name) for m in load_migrations(lvl)] for lvl in Capability}
    assert versions[Capability.TIMESCALE] == versions[Capability.APACHE] == \
        versions[Capability.VANILLA]


def test_timescale_level_uses_the_exact_api() -> None:
    text = sql_for(Capability.TIMESCALE)
    assert re.search(r"create_hypertable\('check_history', 'time',\s+"
                     r"chunk_time_interval => INTERVAL '1 day'", text)
    assert re.search(r"create_hypertable\('alert_history', 'time',\s+"
                     r"chunk_time_interval => INTERVAL '7 days'", text)
    assert re.search(r"ALTER TABLE check_history SET \(\s+timescaledb\.compress,\s+"
                     r"timescaledb\.compress_segmentby = 'subscription_id',\s+"
                     r"timescaledb\.compress_orderby = 'time DESC'\s+\)", text)
    assert re.search(r"add_compression_policy\('check_history', compress_after => "
                     r"INTERVAL '7 days'", text)
    assert re.search(r"add_retention_policy\('check_history', drop_after => "
                     r"INTERVAL '90 days'", text)
    assert re.search(r"add_retention_policy\('alert_history', drop_after => "
                     r"INTERVAL '1 year'", text)
    assert re.search(r"add_job\('lh_rollup_job', INTERVAL '5 minutes'", text)


def test_apache_level_sends_nothing_the_apache_edition_refuses() -> None:
    text = sql_for(Capability.APACHE)
    assert "create_hypertable('check_history'" in text
    for refused in ("timescaledb.compress", "add_compression_policy", "add_retention_policy",
                    "add_job", "timescaledb.continuous"):
        assert refused not in text


def test_vanilla_level_is_plain_postgresql() -> None:
    text = sql_for(Capability.VANILLA)
    code = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    assert "timescaledb" not in code.lower()
    assert "create_hypertable" not in text and "PARTITION BY RANGE (time)" in text


def _table_body(text: str, table: str) -> str:
    body = re.search(rf"CREATE TABLE {table} \((.*?)\n\)", text, re.S).group(1)
    return re.sub(r"\s+", " ", body).strip()


@pytest.mark.parametrize("table", ["check_history", "alert_history"])
def test_variants_define_identical_columns(table: str) -> None:
    vanilla = (sql_dir() / "002_timeseries.vanilla.sql").read_text()
    hyper = (sql_dir() / "002_timeseries.hypertable.sql").read_text()
    assert _table_body(vanilla, table) == _table_body(hyper, table)


def test_checksums_differ_per_level_and_are_stable() -> None:
    a = load_migrations(Capability.APACHE)
    assert [m.checksum for m in a] == [m.checksum for m in load_migrations(Capability.APACHE)]
    v = load_migrations(Capability.VANILLA)
    assert a[0].checksum == v[0].checksum  # 001 has no variants
    assert a[1].checksum != v[1].checksum


def test_bad_file_names_and_gaps_are_refused(tmp_path: Path) -> None:
    (tmp_path / "001_core.sql").write_text("SELECT 1;")
    (tmp_path / "003_late.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="without gaps"):
        load_migrations(Capability.VANILLA, tmp_path)
    (tmp_path / "003_late.sql").unlink()
    (tmp_path / "002_x.postgres.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNN_name"):
        load_migrations(Capability.VANILLA, tmp_path)


def test_level_of_server() -> None:
    def info(**kw) -> ServerInfo:
        base = {"server_version": 170000, "extension_installed": False,
                "extension_available": False, "preloaded": False, "license": None}
        return ServerInfo(**(base | kw))

    assert level_of(info()) is Capability.VANILLA
    assert level_of(info(extension_available=True)) is Capability.VANILLA
    assert level_of(info(extension_installed=True, preloaded=True, license="apache")) \
        is Capability.APACHE
    assert level_of(info(extension_available=True, preloaded=True, license="timescale")) \
        is Capability.TIMESCALE


T = datetime(2026, 3, 10, 14, 25, tzinfo=UTC)


def test_plan_window_covers_the_window_exactly_once() -> None:
    start, end = T - timedelta(days=30), T
    wm = T.replace(minute=0) - timedelta(hours=1)
    for watermark, last_daily in ((wm, datetime(2026, 3, 11, tzinfo=UTC)),
                                  (wm - timedelta(hours=2), datetime(2026, 3, 11, tzinfo=UTC)),
                                  (datetime(2026, 3, 10, tzinfo=UTC), None)):
        p = plan_window(start, end, watermark=watermark)
        # the daily row of the watermark's own day holds only the hours below the watermark
        daily = (p.daily[0], min(p.daily[1], watermark))
        ranges = sorted(r for r in [daily, *p.hourly, *p.raw] if r[0] < r[1])
        assert ranges[0][0] == start and ranges[-1][1] == end
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
        assert p.daily[0] == datetime(2026, 2, 9, tzinfo=UTC)
        if last_daily:
            assert p.daily[1] == last_daily and p.hourly[1][0] >= p.hourly[1][1]
        assert p.raw[1] == (watermark, end)
    # a window ending before the watermark uses hourly rows for its last partial day
    p = plan_window(start, T - timedelta(hours=3), watermark=wm)
    assert p.daily[1] == datetime(2026, 3, 10, tzinfo=UTC)
    assert p.hourly[1] == (datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 10, 11, tzinfo=UTC))


def test_plan_window_without_rollups_reads_raw() -> None:
    p = plan_window(T - timedelta(hours=5), T, watermark=None)
    assert p.raw[0] == (T - timedelta(hours=5), T) and p.daily[0] >= p.daily[1]
