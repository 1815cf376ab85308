"""db.tune and the timescaledb role hold one opinion: the rules in dbops/tuning.py."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import jinja2
import pytest
import yaml
from lighthouse_ops.dbops import tune, tuning

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles/timescaledb"


def _role_filter():
    spec = importlib.util.spec_from_file_location(
        "role_filter", ROLE / "filter_plugins/timescaledb_tune.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.FilterModule().filters()["timescaledb_tune"]


def _render_role_conf(memory_mb: int, cpus: int, conns: int, workers: int) -> dict[str, str]:
    """The role's drop-in as the role renders it (the real template and filter), parsed."""
    tuned = _role_filter()(memory_mb, cpus, max_connections=conns, background_workers=workers,
                           overrides={})
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLE / "templates"),  # noqa: S701 (a config file, not HTML)
                             undefined=jinja2.StrictUndefined)
    env.tests["match"] = lambda value, pattern: re.match(pattern, str(value)) is not None
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    text = env.get_template("lighthouse.conf.j2").render(
        **{k: v for k, v in defaults.items() if not isinstance(v, str) or "{{" not in v},
        ansible_managed="managed", timescaledb_tuned=tuned, timescaledb_tls_dir="/tls",
        timescaledb_log_filename="postgresql.log",
        timescaledb_tune_memory_mb=memory_mb, timescaledb_tune_cpus=cpus)
    section = text.split("(timescaledb-tune rules)", 1)[1].split("# Extra settings")[0]
    out = {}
    for line in filter(None, map(str.strip, section.splitlines())):
        key, _, value = line.partition(" = ")
        out[key.strip()] = value.strip().strip("'")
    return out


GRID = [(mem, cpus) for mem in (512, 1024, 2048, 3900, 8192, 16384, 65536)
        for cpus in (1, 2, 4, 16)]


@pytest.mark.parametrize(("memory_mb", "cpus"), GRID)
def test_db_tune_wants_exactly_what_the_role_renders(memory_mb, cpus):
    for conns, workers in ((100, 8), (250, 16)):
        wanted = {s.name: s.value for s in tune.recommend(
            tune.HostFacts(memory_mb * tune.MiB, cpus), max_connections=conns,
            background_workers=workers)}
        assert wanted == _render_role_conf(memory_mb, cpus, conns, workers)


@pytest.mark.parametrize(("memory_mb", "cpus"), GRID)
def test_timescaledb_background_workers_are_reserved(memory_mb, cpus):
    got = {s.name: int(s.value) for s in tune.recommend(
        tune.HostFacts(memory_mb * tune.MiB, cpus), background_workers=8)
        if s.name in ("max_worker_processes", "max_parallel_workers",
                      "timescaledb.max_background_workers")}
    parallel = got.get("max_parallel_workers", 0)
    assert got["max_worker_processes"] >= got["timescaledb.max_background_workers"] + parallel + 1


def test_role_conf_name_is_the_one_the_role_writes():
    tasks = yaml.safe_load((ROLE / "tasks/config.yml").read_text())
    dests = [t["ansible.builtin.template"]["dest"] for t in tasks
             if "ansible.builtin.template" in t]
    assert any(d.endswith("/conf.d/" + tune.ROLE_CONF_NAME) for d in dests), dests


def test_one_rule_module():
    # the filter plugin holds no rules of its own: it loads dbops/tuning.py by path
    plugin = (ROLE / "filter_plugins/timescaledb_tune.py").read_text()
    assert "dbops/tuning.py" in plugin and "def timescaledb_tune" not in plugin
    assert _role_filter().__module__ == "lighthouse_tuning_rules"
    assert tuning.timescaledb_tune(2048, 2)["work_mem"] == "2621kB"


def test_host_fact_parsers():
    assert tune.parse_meminfo("MemTotal:        2000000 kB\nMemFree: 1 kB\n") == 2_048_000_000
    cpuinfo = "processor\t: 0\nx\nprocessor\t: 1\nprocessor\t: 2\nprocessor\t: 3\n"
    assert tune.parse_cpus(cpuinfo) == 4
    assert tune.parse_cpus(cpuinfo, "200000 100000") == 2
    assert tune.parse_cpus(cpuinfo, "max 100000") == 4


def test_unit_normalisation():
    assert tune.to_base("16384", "8kB") == 128 * tune.MiB
    assert tune.to_base("128MB", "8kB") == 128 * tune.MiB
    assert tune.to_base("4096", "kB") == 4 * tune.MiB
    assert tune.to_base("100", None) == 100
    assert tune.to_base("2621kB", "kB") == 2621 * 1024
