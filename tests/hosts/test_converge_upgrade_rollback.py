"""upgrade.yml on the converged hosts: the TimescaleDB step runs clean, and a deliberately
broken prober release fails its health gate and is rolled back to the previous venv."""

from __future__ import annotations

import json
import shutil
import urllib.request
import zipfile
from pathlib import Path

import pytest
from lighthouse_ops.deploy.ansible_run import PlaybookResult

from tests.hosts.deploy_support import Converged, converged_site

BROKEN = 'raise SystemExit("deliberately broken release (rollback test)")\n'


def broken_wheel(good: Path, out_dir: Path) -> Path:
    """The good wheel with lighthouse/service.py replaced: `migrate` works, `run` dies."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / good.name
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = BROKEN.encode() if item.filename == "lighthouse/service.py" else src.read(item)
            dst.writestr(item, data)
    return out


@pytest.fixture(scope="module")
def upgrade(sandbox, tmp_path_factory) -> tuple[Converged, PlaybookResult]:
    site = converged_site(sandbox)
    wheel = broken_wheel(site.dep.release.wheel, tmp_path_factory.mktemp("broken"))
    try:
        res = site.dep.playbook("upgrade.yml", {
            "prober_release": f"{site.dep.release.version}-broken",
            "prober_wheel": str(wheel),
            "prober_health_retries": 8,
        }, echo=False, check=False)
    finally:
        shutil.rmtree(wheel.parent, ignore_errors=True)
    return site, res


def test_timescaledb_upgrade_step_is_clean(upgrade) -> None:
    _, res = upgrade
    assert res.recap["db-1"]["failed"] == 0
    assert "Verify every database runs the available version" in res.output


def test_broken_release_fails_the_gate_and_rolls_back(upgrade, prober_host, sandbox_hosts) -> None:
    site, res = upgrade
    assert res.rc != 0 and res.recap["prober-1"]["failed"] == 1
    assert "rolled back to" in res.output
    current = prober_host.file("/opt/lighthouse/current")
    assert current.linked_to == f"/opt/lighthouse/venvs/{site.dep.release.name}"
    assert prober_host.service("lighthouse-prober").is_running
    url = f"http://{sandbox_hosts['prober-1'].ip}:8080/health"
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310
        assert json.loads(resp.read())["status"] == "ok"
