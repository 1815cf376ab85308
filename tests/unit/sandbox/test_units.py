"""Pure parts of the sandbox: names, cache keys, proxy config, PID checks."""

import os
from pathlib import Path

import pytest
from lighthouse_ops.sandbox import Sandbox, SandboxError, paths
from lighthouse_ops.sandbox.aptproxy import config_text
from lighthouse_ops.sandbox.process import alive
from lighthouse_ops.sandbox.rootfs import PACKAGES, RootfsSpec


@pytest.mark.parametrize("name", ["", "Local", "1abc", "a_b", "a/b", "x" * 25, "a--b", "a-"])
def test_bad_sandbox_names_are_refused(name: str) -> None:
    with pytest.raises(SandboxError, match="bad sandbox name"):
        Sandbox(name)


def test_inventory_location_depends_on_the_name(tmp_path: Path) -> None:
    assert Sandbox("local", repo_root=tmp_path).inventory_path == (
        tmp_path / "inventories/local/hosts.yml"
    )
    assert Sandbox("pytest-tsdb", repo_root=tmp_path).inventory_path == (
        tmp_path / ".sandbox/pytest-tsdb/hosts.yml"
    )
    assert paths.inventory_path("local") == paths.REPO_ROOT / "inventories/local/hosts.yml"


def test_rootfs_key_follows_suite_and_package_set() -> None:
    base = RootfsSpec()
    assert base.key == RootfsSpec(packages=tuple(reversed(PACKAGES))).key  # order-free
    assert base.key != RootfsSpec(packages=(*PACKAGES, "less")).key
    assert base.key != RootfsSpec(suite="forky").key
    assert base.key.startswith("trixie-")
    assert base.tarball.name.endswith(".tar.zst")


def test_apt_proxy_serves_only_debian() -> None:
    text = config_text(Path("/c"), Path("/l"))
    assert "ForceManaged: 1" in text
    assert "BindAddress: 10.213.255.253" in text
    remaps = [line for line in text.splitlines() if line.startswith("Remap-")]
    assert all("deb.debian.org" in line for line in remaps) and len(remaps) == 2


def test_alive_checks_the_command_not_just_the_pid() -> None:
    assert alive(os.getpid(), "python")
    assert not alive(os.getpid(), "systemd-nspawn")
    assert not alive(2**22 + 1, "")


def test_missing_capabilities_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from lighthouse_ops.sandbox import CapabilityError, check_capabilities, core

    monkeypatch.setattr(core.os, "geteuid", lambda: 1000)
    with pytest.raises(CapabilityError, match="need root"):
        check_capabilities()
    monkeypatch.setattr(core.os, "geteuid", lambda: 0)
    monkeypatch.setattr(core.shutil, "which", lambda tool: None if tool == "zstd" else "/x")
    with pytest.raises(CapabilityError, match="missing tools: zstd"):
        check_capabilities()
