from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from lighthouse_ops.backup import fingerprint as fp
from lighthouse_ops.backup.pgbackrest import BackupSet, parse_info, render_sets, render_wal
from lighthouse_ops.backup.plan import Aborted, Plan
from lighthouse_ops.backup.remote import RemoteError, runner_from_inventory
from lighthouse_ops.backup.runbook import RunbookError, check_target_covered, parse_target_time


def test_target_time_needs_an_offset_and_the_past():
    assert parse_target_time("2026-01-02 03:04:05+00") == datetime(2026, 1, 2, 3, 4, 5,
                                                                    tzinfo=UTC)
    with pytest.raises(RunbookError, match="no UTC offset"):
        parse_target_time("2026-01-02 03:04:05")
    with pytest.raises(RunbookError, match="not a timestamp"):
        parse_target_time("yesterday")
    with pytest.raises(RunbookError, match="future"):
        parse_target_time("2999-01-01 00:00:00+00")


def _set(label: str, stop: datetime, error: bool = False) -> BackupSet:
    return BackupSet(label, "full", stop - timedelta(minutes=1), stop, 1, 1, None, None, error)


def test_target_must_follow_a_finished_backup():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    sets = [_set("a", t0), _set("b", t0 + timedelta(hours=1)),
            _set("c", t0 + timedelta(hours=2), error=True)]
    assert check_target_covered(t0 + timedelta(hours=3), sets).label == "b"
    with pytest.raises(RunbookError, match="earliest point recoverable"):
        check_target_covered(t0 - timedelta(seconds=1), sets)


def test_parse_pgbackrest_info():
    text = json.dumps([{"name": "lighthouse", "status": {"code": 0, "message": "ok"},
                        "backup": [{"label": "20260101-000000F", "type": "full",
                                    "timestamp": {"start": 1767225600, "stop": 1767225660},
                                    "info": {"size": 1000, "repository": {"delta": 300}},
                                    "archive": {"start": "0000000100000000000000A1",
                                                "stop": "0000000100000000000000A2"}}],
                        "archive": [{"id": "17-1", "min": "0000000100000000000000FE",
                                     "max": "000000010000000100000003"},
                                    {"id": "17-2", "min": "000000010000000100000004",
                                     "max": "000000020000000100000006"}]}])
    info = parse_info(text, "lighthouse")
    sets = info.sets
    assert info.status["code"] == 0 and sets[0].seconds == 60 and sets[0].repo_size == 300
    assert "20260101-000000F" in render_sets(sets)
    assert [r.segments for r in info.wal] == [6, None]  # FE, FF, 1/00..1/03; across timelines
    assert render_wal(info.wal).splitlines()[0] == (
        "WAL archive 17-1: 0000000100000000000000FE .. 000000010000000100000003 (6 segments)")
    assert "empty" in render_wal([])


def test_plan_confirmation_rules():
    plan = Plan("x", ["drop everything"])
    out = io.StringIO()
    assert plan.approve(yes=False, dry_run=True, out=out) is False
    assert "1. drop everything" in out.getvalue()
    assert plan.approve(yes=True, dry_run=False, out=out) is True
    with pytest.raises(Aborted, match="--yes"):
        plan.approve(yes=False, dry_run=False, out=out, interactive=False)
    with pytest.raises(Aborted):
        plan.approve(yes=False, dry_run=False, out=out, ask=lambda _: "y")
    assert plan.approve(yes=False, dry_run=False, out=out, ask=lambda _: "yes") is True


def test_runner_from_inventory(tmp_path):
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  vars:\n    ansible_user: root\n    ansible_ssh_private_key_file: /k\n"
                   "  children:\n    db:\n      hosts:\n        db-1:\n"
                   "          ansible_host: 10.213.0.2\n")
    r = runner_from_inventory(inv, "db-1")
    assert (r.address, r.key, r.user) == ("10.213.0.2", "/k", "root")
    assert r.argv("true")[-2:] == ["root@10.213.0.2", "true"]
    with pytest.raises(RemoteError, match="not in inventory"):
        runner_from_inventory(inv, "db-9")


def test_sample_ranges_and_compare():
    assert fp.sample_offsets(0, 10, 3) == []
    assert fp.sample_offsets(25, 10, 3) == [(0, 25)]
    assert fp.sample_offsets(1000, 10, 3) == [(0, 10), (495, 10), (990, 10)]
    a = {"public.t": fp.TableFingerprint(5, [fp.Sample(0, 5, "x")])}
    b = {"public.t": fp.TableFingerprint(5, [fp.Sample(0, 5, "y")]),
         "public.u": fp.TableFingerprint(1, [])}
    diffs = fp.compare(a, b)
    assert "public.u: present in the restored copy only" in diffs
    assert any("checksum of rows 0..4 differs" in d for d in diffs)
    assert fp.compare(a, a) == []
    assert fp.from_json(fp.to_json(a)) == a


def test_parse_backup_manifest_files():
    from lighthouse_ops.backup.pgbackrest import parse_manifest_files

    text = ("[backup]\nbackup-label=\"x\"\n\n[target:file]\n"
            'pg_data/PG_VERSION={"bni":1,"bno":52682,"repo-size":12,"size":3}\n'
            'pg_data/base/1/112={"bni":1,"bno":0,"reference":"20260101-000000F",'
            '"repo-size":57,"size":8192}\n\n[target:file:default]\nmode="0600"\n')
    files = parse_manifest_files(text)
    assert set(files) == {"pg_data/PG_VERSION", "pg_data/base/1/112"}
    assert files["pg_data/base/1/112"]["reference"] == "20260101-000000F"
