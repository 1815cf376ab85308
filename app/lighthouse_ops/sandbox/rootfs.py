"""Debian root filesystems for sandbox hosts.

One debootstrap build per (suite, package list) is cached as a zstd tarball under CACHE_ROOT,
keyed by a hash of both; an fcntl lock makes concurrent `up`s wait instead of building twice.
The tarball is unpacked once into a read-only base tree; each host then gets an overlayfs
(base + its own upper dir) mounted at <host>/rootfs, which takes milliseconds instead of the
seconds a full extraction per host would take (see docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lighthouse_ops.sandbox import paths
from lighthouse_ops.sandbox.commands import run
from lighthouse_ops.sandbox.errors import SandboxError

log = logging.getLogger("lighthouse_ops.sandbox")

SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"  # plain http: reachable through apt-cacher-ng
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "sudo",
    "iproute2",
    "ca-certificates",
)
# Cap of each host's tmpfs writable layer (RAM, used only as written); env overrides.
HOST_LAYER_SIZE = os.environ.get("LIGHTHOUSE_SANDBOX_HOST_LAYER", "6G")
# Bump when the post-processing below changes, so old tarballs are not reused.
RECIPE_VERSION = "2"


@dataclass(frozen=True)
class RootfsSpec:
    suite: str = SUITE
    mirror: str = MIRROR
    packages: tuple[str, ...] = PACKAGES

    @property
    def key(self) -> str:
        """Stable short hash of everything that changes the built tree."""
        text = "\n".join([RECIPE_VERSION, self.suite, self.mirror, *sorted(self.packages)])
        return f"{self.suite}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"

    @property
    def tarball(self) -> Path:
        return paths.CACHE_ROOT / f"rootfs-{self.key}.tar.zst"

    @property
    def base(self) -> Path:
        return paths.CACHE_ROOT / f"base-{self.key}"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive fcntl lock on path (created if missing); released on exit or process death."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _strip_host_identity(tree: Path) -> None:
    """Remove what must differ per host (ssh host keys, machine-id) and what only costs space."""
    for key in (tree / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (tree / "etc/machine-id").write_text("")  # empty: systemd sets a fresh id at each boot
    with contextlib.suppress(FileNotFoundError):
        (tree / "var/lib/dbus/machine-id").unlink()
    for deb in (tree / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    for lst in (tree / "var/lib/apt/lists").glob("*_*"):
        lst.unlink()
    (tree / "etc/apt/sources.list").write_text(
        f"deb {MIRROR} {SUITE} main\n"
        f"deb {MIRROR} {SUITE}-updates main\n"
        f"deb {MIRROR}-security {SUITE}-security main\n"
    )
    # The sandbox configures eth0 and lo from outside; nothing in the host should fight that.
    (tree / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
    (tree / "etc/ssh/sshd_config.d/lighthouse-sandbox.conf").write_text(
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n"
    )


def ensure_tarball(spec: RootfsSpec = RootfsSpec()) -> tuple[Path, float | None]:
    """Build the cached tarball if missing. Returns (path, build seconds or None if cached)."""
    if spec.tarball.exists():
        return spec.tarball, None
    if shutil.which("debootstrap") is None:
        from lighthouse_ops.sandbox.errors import CapabilityError

        raise CapabilityError("debootstrap is not installed (apt-get install debootstrap)")
    with file_lock(paths.CACHE_ROOT / f"rootfs-{spec.key}.lock"):
        if spec.tarball.exists():  # another process built it while we waited
            return spec.tarball, None
        started = time.monotonic()
        work = paths.CACHE_ROOT / f"build-{spec.key}"
        if work.exists():
            shutil.rmtree(work)
        log.info("rootfs build suite=%s key=%s packages=%s", spec.suite, spec.key,
                 ",".join(spec.packages))
        run(
            [
                "debootstrap", "--variant=minbase", f"--include={','.join(spec.packages)}",
                spec.suite, str(work), spec.mirror,
            ],
            timeout=1800,
        )
        _strip_host_identity(work)
        partial = spec.tarball.with_suffix(".partial")
        run(
            [
                "tar", "--numeric-owner", "--xattrs", "--acls", "-I", "zstd -T0 -6",
                "-C", str(work), "-cf", str(partial), ".",
            ]
        )
        partial.rename(spec.tarball)
        shutil.rmtree(work)
        seconds = time.monotonic() - started
        log.info("rootfs built key=%s seconds=%.1f tarball=%s", spec.key, seconds, spec.tarball)
        return spec.tarball, seconds


def extract(tarball: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    run(["tar", "--numeric-owner", "--xattrs", "--acls", "-I", "zstd", "-C", str(dest),
         "-xf", str(tarball)])


def ensure_base(spec: RootfsSpec = RootfsSpec()) -> Path:
    """The tarball unpacked once, read-only lower layer for every host's overlay."""
    done = spec.base / ".lighthouse-complete"
    if done.exists():
        return spec.base
    tarball, _ = ensure_tarball(spec)
    with file_lock(paths.CACHE_ROOT / f"base-{spec.key}.lock"):
        if done.exists():
            return spec.base
        if spec.base.exists():
            shutil.rmtree(spec.base)
        extract(tarball, spec.base)
        done.write_text(spec.key + "\n")
    return spec.base


def mount_overlay(base: Path, host_dir: Path) -> Path:
    """Mount base + a writable layer at host_dir/rootfs (idempotent); return the rootfs path.

    The writable layer lives on a tmpfs (host_dir/layer, size cap HOST_LAYER_SIZE): dpkg's
    fsyncs cost nothing there, and `down` drops it with one umount instead of deleting tens of
    thousands of files from disk (measured: 8 s for one host with PostgreSQL installed).
    """
    layer, rootfs = host_dir / "layer", host_dir / "rootfs"
    for d in (layer, rootfs):
        d.mkdir(parents=True, exist_ok=True)
    if not is_mountpoint(layer):
        run(["mount", "-t", "tmpfs", "-o", f"mode=0755,size={HOST_LAYER_SIZE}",
             "lighthouse-sandbox", str(layer)])
    upper, work = layer / "upper", layer / "work"
    for d in (upper, work):
        d.mkdir(exist_ok=True)
    if not is_mountpoint(rootfs):
        run([
            "mount", "-t", "overlay", "overlay",
            "-o", f"lowerdir={base},upperdir={upper},workdir={work}", str(rootfs),
        ])
    return rootfs


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below path, most recent first (the order to unmount them)."""
    prefix = str(path.resolve())
    found: list[Path] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        target = line.split()[4].replace("\\040", " ")
        if target == prefix or target.startswith(prefix + "/"):
            found.append(Path(target))
    return found[::-1]


def is_mountpoint(path: Path) -> bool:
    return path.resolve() in mounts_under(path)


def unmount_all(path: Path) -> None:
    for target in mounts_under(path):
        run(["umount", str(target)], check=False)
    left = mounts_under(path)
    if left:
        for target in left:
            run(["umount", "-l", str(target)], check=False)
    if mounts_under(path):
        raise SandboxError(f"could not unmount: {', '.join(map(str, mounts_under(path)))}")
