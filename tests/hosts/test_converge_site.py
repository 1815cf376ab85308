"""site.yml converges on fresh sandbox hosts and a second run changes nothing."""

from __future__ import annotations

import pytest

from tests.hosts.deploy_support import Converged, converged_site


@pytest.fixture(scope="module")
def site(sandbox) -> Converged:
    return converged_site(sandbox)


def test_first_run_converges_every_host(site: Converged) -> None:
    assert site.first.ok
    assert set(site.first.recap) == {"db-1", "prober-1"}
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in site.first.recap.values())


def test_second_run_changes_nothing(site: Converged) -> None:
    changed = [line for line in site.second.output.splitlines() if line.startswith("changed:")]
    assert site.second.ok, site.second.output[-3000:]
    assert site.second.changed == 0, f"changed on second run: {site.second.recap}\n{changed}"
