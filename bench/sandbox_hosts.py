"""Sandbox host timings: prints the figures recorded in docs/benchmarks.md (## Sandbox hosts).

    .venv/bin/python bench/sandbox_hosts.py          # warm cache: host from cache, boot, up, down
    .venv/bin/python bench/sandbox_hosts.py --cold   # also a cold debootstrap into a temp cache

Uses its own sandbox `bench` (db-1 + prober-1) and removes it at the end. Bounded: one cold
build, one extraction, one up/up/down cycle.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from lighthouse_ops.sandbox import Sandbox, paths, rootfs


def timed(fn, *args):
    started = time.monotonic()
    result = fn(*args)
    return time.monotonic() - started, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold", action="store_true", help="also time a cold rootfs build")
    args = parser.parse_args()
    spec = rootfs.RootfsSpec()

    if args.cold:
        real_cache = paths.CACHE_ROOT
        with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
            paths.CACHE_ROOT = Path(tmp)
            try:
                seconds, (tarball, _) = timed(rootfs.ensure_tarball, spec)
                size_mb = tarball.stat().st_size / 2**20
                print(f"cold rootfs build (debootstrap + zstd tarball): {seconds:.1f} s, "
                      f"tarball {size_mb:.0f} MiB")
            finally:
                paths.CACHE_ROOT = real_cache

    tarball, _ = rootfs.ensure_tarball(spec)
    with tempfile.TemporaryDirectory(dir=paths.STATE_ROOT) as tmp:
        seconds, _ = timed(rootfs.extract, tarball, Path(tmp) / "rootfs")
        print(f"full extraction of the tarball (one host without overlay): {seconds:.2f} s")
        shutil.rmtree(Path(tmp) / "rootfs")

    sb = Sandbox("bench")
    sb.down()
    try:
        seconds, hosts = timed(sb.up, 1, 1)
        t = sb.timings
        print(f"up, 2 hosts, warm cache: {seconds:.2f} s")
        print(f"host from cache (overlay mount + per-host config): {t['host_from_cache_s']:.2f} s")
        for h in hosts:
            print(f"boot to SSH {h.name}: {h.boot_to_ssh_s:.2f} s")
        seconds, _ = timed(sb.up, 1, 1)
        print(f"second up (no-op): {seconds:.3f} s")
    finally:
        seconds, _ = timed(sb.down)
        print(f"down, 2 hosts: {seconds:.2f} s")


if __name__ == "__main__":
    main()
