"""Per-monitor probe_* series under blackbox_exporter's names, the cap, process_* and build_info,
read back through Prometheus' own exposition parser."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lighthouse import __version__
from lighthouse.metrics import Metrics
from lighthouse.models import CheckResult, Monitor, Status
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def monitor(i: int, typ: str = "http") -> Monitor:
    return Monitor(uuid.UUID(int=i), f"m{i}", typ, {"url": "https://x.example/"}, 60)


def scrape(metrics: Metrics) -> dict[str, list]:
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        out.setdefault(family.name, []).extend(family.samples)
    return out


def test_latest_check_per_monitor_under_blackbox_names():
    m = Metrics()
    ok, bad = monitor(1), monitor(2, "tls")
    m.probes.observe(ok, CheckResult(ok.id, NOW, Status.SUCCESS, latency_ms=120, http_status=200,
                                     timings={"dns": 2.0, "connect": 10.0, "tls": 30.5,
                                              "ttfb": 80.0, "total": 120.25},
                                     cert_days_left=40))
    m.probes.observe(bad, CheckResult(bad.id, NOW, Status.TIMEOUT, error_code="timeout"))
    got = scrape(m)
    success = {s.labels["monitor"]: s.value for s in got["probe_success"]}
    assert success == {"m1": 1.0, "m2": 0.0}
    (total,) = got["probe_duration_seconds"]
    assert total.value == pytest.approx(0.12025) and total.labels == {
        "monitor_id": str(ok.id), "monitor": "m1", "type": "http"}
    phases = {s.labels["phase"]: s.value for s in got["probe_http_duration_seconds"]}
    assert phases == pytest.approx({"dns": 0.002, "connect": 0.01, "tls": 0.0305, "ttfb": 0.08})
    assert [s.value for s in got["probe_http_status_code"]] == [200.0]
    (expiry,) = got["probe_ssl_earliest_cert_expiry"]
    assert expiry.value == NOW.timestamp() + 40 * 86400  # only days known: day precision
    m.probes.observe(ok, CheckResult(ok.id, NOW, Status.SUCCESS, latency_ms=1,
                                     cert_days_left=40, cert_expires_at=1_800_000_123.0))
    assert scrape(m)["probe_ssl_earliest_cert_expiry"][0].value == 1_800_000_123.0  # exact
    # a newer result replaces the series' values, it does not add series
    m.probes.observe(bad, CheckResult(bad.id, NOW, Status.SUCCESS, latency_ms=5))
    assert {s.labels["monitor"]: s.value for s in scrape(m)["probe_success"]} == {"m1": 1.0,
                                                                                 "m2": 1.0}


def test_past_the_cap_monitors_get_no_series_and_are_counted_until_removed():
    m = Metrics(probe_max_monitors=3)
    for i in range(1, 6):
        mon = monitor(i)
        m.probes.observe(mon, CheckResult(mon.id, NOW, Status.SUCCESS, latency_ms=1))
    got = scrape(m)
    assert sorted(s.labels["monitor"] for s in got["probe_success"]) == ["m1", "m2", "m3"]
    assert got["lighthouse_probe_series_capped_monitors"][0].value == 2
    m.probes.forget(monitor(1).id)  # removed from the schedule: its series go, a slot frees
    mon = monitor(4)
    m.probes.observe(mon, CheckResult(mon.id, NOW, Status.SUCCESS, latency_ms=1))
    got = scrape(m)
    assert sorted(s.labels["monitor"] for s in got["probe_success"]) == ["m2", "m3", "m4"]
    assert got["lighthouse_probe_series_capped_monitors"][0].value == 1  # m5 only


def test_process_python_and_build_info_are_exposed():
    got = scrape(Metrics())
    assert got["process_resident_memory_bytes"][0].value > 0
    assert "process_cpu_seconds" in got and "python_info" in got
    (build,) = got["lighthouse_build_info"]
    assert build.labels["version"] == __version__ and build.value == 1.0


def test_promtool_check_metrics_finds_nothing_to_fix():
    """Prometheus' own linter (promtool, installed by scripts/bootstrap) on a full /metrics:
    every family of ours, probe_* series for several types, fleet and process metrics. It
    does find problems when there are some (the second call proves it looks)."""
    promtool = Path(sys.executable).with_name("promtool")
    assert promtool.exists(), "scripts/bootstrap installs .venv/bin/promtool"
    m = Metrics()
    for i, typ in enumerate(("http", "tls", "tcp", "dns"), start=1):
        mon = monitor(i, typ)
        m.probes.observe(mon, CheckResult(mon.id, NOW, Status.SUCCESS, latency_ms=12,
                                          http_status=200 if typ == "http" else None,
                                          timings={"dns": 1.0, "connect": 2.0, "total": 12.0},
                                          cert_days_left=30 if typ == "tls" else None))
    m.checks.labels("success").inc()
    m.fleet_members.labels("eu-west-1").set(2)
    m.fleet_verdicts.labels("changed").inc()
    m.alerts.labels("downtime", "webhook", "sent").inc()
    ours = subprocess.run([str(promtool), "check", "metrics"], input=m.render(),
                          capture_output=True, timeout=60)
    assert ours.returncode == 0, (ours.stdout + ours.stderr).decode()
    bad = subprocess.run([str(promtool), "check", "metrics"],
                         input=b"# TYPE foo counter\nfoo 1\n", capture_output=True, timeout=60)
    assert bad.returncode != 0 and b"_total" in bad.stdout + bad.stderr
