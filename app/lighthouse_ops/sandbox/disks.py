"""Block devices for sandbox hosts: a sparse file on a loop device, standing in for an EBS volume.

The loop device is attached on the controller and a block node for it is made inside the host
(`mknod`; nspawn sets no device cgroup policy here, and the host's root keeps CAP_MKNOD and
CAP_SYS_ADMIN, so mkfs and mount work inside). There is no udev in the host: no
/dev/disk/by-id links, and /sys/block shows the whole machine's disks, so roles must be told
the device path rather than discover it.
"""

from __future__ import annotations

import os
from pathlib import Path

from lighthouse_ops.sandbox.commands import run


def attach(image: Path, size_mb: int) -> str:
    """Create image (sparse) if missing, attach it; return the loop device (/dev/loopN)."""
    image.parent.mkdir(parents=True, exist_ok=True)
    if not image.exists():
        with image.open("wb") as fh:
            fh.truncate(size_mb * 1024 * 1024)
    for dev in attached_to(image):
        return dev
    return run(["losetup", "--find", "--show", str(image)]).stdout.strip()


def grow(image: Path, loop: str, size_mb: int) -> None:
    """Enlarge the image and tell the kernel (what an EBS ModifyVolume looks like to the host)."""
    if image.stat().st_size > size_mb * 1024 * 1024:
        raise ValueError(f"{image} is larger than {size_mb} MiB; volumes only grow")
    os.truncate(image, size_mb * 1024 * 1024)
    run(["losetup", "--set-capacity", loop])


def major_minor(loop: str) -> tuple[int, int]:
    st = os.stat(loop)
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def attached_to(image: Path) -> list[str]:
    out = run(["losetup", "--noheadings", "--output", "NAME", "--associated", str(image)],
              check=False).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def detach_under(directory: Path) -> None:
    """Detach every loop device whose backing file lies under directory (even if deleted)."""
    out = run(["losetup", "--noheadings", "--list", "--output", "NAME,BACK-FILE"],
              check=False).stdout
    prefix = str(directory.resolve()) + "/"
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[1].strip().removesuffix(" (deleted)").startswith(prefix):
            run(["losetup", "--detach", parts[0]], check=False)
