"""Pure parts of lighthouse_ops.deploy: recap parsing, release digests, demo SQL, inventory dir."""

from __future__ import annotations

import zipfile
from pathlib import Path

from lighthouse.checks import CheckContext
from lighthouse.checks.runner import SUPPORTED_TYPES, parse_config
from lighthouse_ops.deploy.ansible_run import PlaybookResult, changed_tasks, parse_recap
from lighthouse_ops.deploy.demo import demo_monitors, monitors_sql
from lighthouse_ops.deploy.inventory import LOCAL_GROUP_VARS, prepare_inventory
from lighthouse_ops.deploy.release import (
    REPO_ROOT,
    locked_requirements,
    source_digest,
    wheel_requirements,
)

RECAP = """
TASK [x] ***
ok: [db-1]

PLAY RECAP *********************************************************************
db-1                       : ok=55   changed=0    unreachable=0    failed=0    skipped=15 \
  rescued=0    ignored=0
prober-1                   : ok=41   changed=2    unreachable=0    failed=1    skipped=5 \
  rescued=1    ignored=0
"""  # the backslashes join each host's recap onto one line


def test_parse_recap_reads_every_host():
    recap = parse_recap(RECAP)
    assert recap["db-1"]["changed"] == 0 and recap["db-1"]["ok"] == 55
    assert recap["prober-1"] == {"ok": 41, "changed": 2, "unreachable": 0, "failed": 1,
                                 "skipped": 5, "rescued": 1, "ignored": 0}
    assert PlaybookResult("site.yml", 2, recap).changed == 2


CHECK_RUN = """
TASK [common : Install base packages] ******************************************
ok: [db-1]
changed: [prober-1]

TASK [prober : Create the install directories] *********************************
changed: [prober-1] => (item=/opt/lighthouse)
changed: [prober-1] => (item=/opt/lighthouse/venvs)
ok: [db-1]

RUNNING HANDLER [timescaledb : Restart postgresql] *****************************
changed: [db-1]
"""


def test_changed_tasks_names_each_task_once_per_host_handlers_included():
    assert changed_tasks(CHECK_RUN) == [
        ("common : Install base packages", "prober-1"),
        ("prober : Create the install directories", "prober-1"),
        ("timescaledb : Restart postgresql", "db-1")]
    assert changed_tasks(RECAP) == []


def test_source_digest_changes_with_content(tmp_path: Path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"junk")
    first = source_digest(tmp_path, ("pkg",))
    (tmp_path / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"other")
    assert source_digest(tmp_path, ("pkg",)) == first  # bytecode does not count
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert source_digest(tmp_path, ("pkg",)) != first


def test_wheel_requirements_skip_extras(tmp_path: Path):
    wheel = tmp_path / "lighthouse-1.2.3-py3-none-any.whl"
    meta = ("Metadata-Version: 2.4\nName: lighthouse\nVersion: 1.2.3\n"
            "Requires-Dist: httpx<0.29,>=0.28\nRequires-Dist: pytest; extra == 'test'\n")
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("lighthouse-1.2.3.dist-info/METADATA", meta)
    assert wheel_requirements(wheel) == ("1.2.3", ["httpx<0.29,>=0.28"])


def test_host_requirements_are_the_locked_ones_with_hashes():
    text = locked_requirements()
    pins = dict(line.split(" ")[0].split("==") for line in text.splitlines()
                if "==" in line and not line.startswith(" "))
    assert {"httpx", "psycopg", "boto3", "pyyaml"} <= set(pins)  # prober deps + backup extra
    assert not {"pulumi", "ansible-core", "pytest", "invoke"} & set(pins)  # controller only
    lock = (REPO_ROOT / "uv.lock").read_text()
    assert all(f'name = "{n}"\nversion = "{v}"' in lock for n, v in pins.items())
    assert text.count("--hash=sha256:") >= len(pins)


def test_demo_sql_is_idempotent_by_name_and_quotes():
    monitors = demo_monitors("10.0.0.2", "10.0.0.6", "ab" * 32)
    assert {m["type"] for m in monitors} == set(SUPPORTED_TYPES) - {"tls"}  # no TLS offline
    ctx = CheckContext.create(allow_cidrs=["10.0.0.0/24"])
    for m in monitors:  # what the prober will parse: each config is valid for its type
        parse_config(m["type"], m["config"], ctx)
    sql = monitors_sql([{"name": "it's", "type": "http", "config": {"url": "http://x/"}}])
    assert "'it''s'" in sql
    assert "WHERE NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.name = w.name)" in sql


def test_prepare_inventory_links_group_vars(tmp_path: Path):
    hosts = tmp_path / "hosts.yml"
    hosts.write_text("all: {}\n")
    inv = prepare_inventory(tmp_path, hosts, {"db-1": {"data_volume_create_node":
                                                       {"major": 7, "minor": 3}}})
    assert (inv / "group_vars").resolve() == LOCAL_GROUP_VARS.resolve()
    assert (inv / "hosts.yml").resolve() == hosts.resolve()
    assert "minor: 3" in (inv / "host_vars" / "db-1.yml").read_text()
    prepare_inventory(tmp_path, hosts, {})  # second call: links already right


def test_a_playbook_that_matched_no_host_is_an_error(tmp_path: Path):
    import pytest
    from lighthouse_ops.deploy.ansible_run import PlaybookError, run_playbook

    empty = tmp_path / "hosts.yml"
    empty.write_text("all:\n  children:\n    db:\n      hosts: {}\n")
    with pytest.raises(PlaybookError) as err:
        run_playbook("demo.yml", empty, echo=False)
    assert err.value.result.rc == 0 and err.value.result.recap == {}
    assert "no host (the inventory matched none)" in str(err.value)
