"""site.yml converges on fresh sandbox hosts and a second run changes nothing."""

from __future__ import annotations

import shlex

from lighthouse_ops.deploy.ansible_run import changed_tasks

from tests.hosts.deploy_support import Converged, psql


def test_first_run_converges_every_host(site: Converged) -> None:
    assert site.first.ok
    assert set(site.first.recap) == {"db-1", "prober-1"}
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in site.first.recap.values())


def test_second_run_changes_nothing(site: Converged) -> None:
    changed = [line for line in site.second.output.splitlines() if line.startswith("changed:")]
    assert site.second.ok, site.second.output[-3000:]
    assert site.second.changed == 0, f"changed on second run: {site.second.recap}\n{changed}"


LIGHTHOUSE_CONF = "/etc/postgresql/17/main/conf.d/50-lighthouse.conf"
DRIFT = "work_mem = '1MB'  # drift made by test_check_diff"


def test_check_diff_reports_only_drift_and_changes_nothing(site: Converged, sandbox) -> None:
    """--check --diff on converged hosts: exactly the drifted file is reported (so every
    read-only probe ran and nothing else would change), the diff shows it, the host keeps it
    (check mode touched nothing), and the database password is never printed."""
    secret = (site.dep.secrets_dir / "db_app_password").read_text().strip()
    started = psql(sandbox, "SELECT pg_postmaster_start_time()", "postgres")
    sandbox.ssh("db-1", f"echo {shlex.quote(DRIFT)} >> {LIGHTHOUSE_CONF}")
    try:
        res = site.dep.playbook("site.yml", echo=False, check=False,
                                options=("--check", "--diff"))
        assert res.ok, res.output[-3000:]
        assert changed_tasks(res.output) == [
            ("timescaledb : Render Lighthouse settings (tuning, network, logging, preload)",
             "db-1"),
            ("timescaledb : Restart postgresql under systemd", "db-1")], res.output[-3000:]
        assert f"-{DRIFT}" in res.output
        assert secret and secret not in res.output
        after = sandbox.ssh("db-1", f"cat {LIGHTHOUSE_CONF}").stdout
        assert DRIFT in after
        assert psql(sandbox, "SELECT pg_postmaster_start_time()", "postgres") == started
    finally:
        sandbox.ssh("db-1", f"sed -i '/drift made by test_check_diff/d' {LIGHTHOUSE_CONF}")
