"""The release a host installs: the lighthouse wheel plus a wheelhouse of its dependencies.

Hosts cannot reach PyPI, so both are built on the controller. The wheel is cached by a digest
of the sources that go into it (a second deploy of unchanged code rebuilds nothing); the
wheelhouse by its requirements — exactly the versions and hashes uv.lock pins (`uv export`), so
hosts run what the tests ran — and its target, downloaded once with `pip download
--only-binary=:all: --require-hashes` for the hosts' interpreter (trixie: CPython 3.13, x86_64).
The release name is `<version>-<digest>`, so each build gets its own venv on the host.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
CACHE_DIR = REPO_ROOT / ".sandbox" / "build"
# What goes into the wheel (pyproject's hatch config); the digest covers exactly these.
WHEEL_SOURCES = ("pyproject.toml", "app/lighthouse", "app/lighthouse_ops", "sql")
DEFAULT_PLATFORMS = ("manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_28_x86_64")
# wheel platform tags per host CPU: the sandbox's (x86_64) and AWS t4g's (aarch64)
PLATFORMS = {
    "x86_64": DEFAULT_PLATFORMS,
    "aarch64": ("manylinux_2_17_aarch64", "manylinux2014_aarch64", "manylinux_2_28_aarch64"),
}


class ReleaseError(RuntimeError):
    """The wheel or wheelhouse could not be built; the message says which step."""


@dataclass(frozen=True)
class Release:
    version: str
    digest: str
    wheel: Path
    wheelhouse: Path
    python_version: str

    @property
    def name(self) -> str:
        return f"{self.version}-{self.digest}"

    def ansible_vars(self) -> dict[str, str]:
        return {
            "prober_release": self.name,
            "prober_wheel": str(self.wheel),
            "prober_wheelhouse": str(self.wheelhouse),
            "prober_python_version": self.python_version,
        }


def source_digest(root: Path = REPO_ROOT, sources: tuple[str, ...] = WHEEL_SOURCES) -> str:
    """sha256 over path + content of every source file (bytecode and caches excluded)."""
    h = hashlib.sha256()
    for top in sources:
        base = root / top
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for p in files:
            if "__pycache__" in p.parts or p.suffix == ".pyc":
                continue
            h.update(str(p.relative_to(root)).encode() + b"\0")
            h.update(p.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def _run(argv: list[str], step: str, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise ReleaseError(f"{step} failed (exit {proc.returncode}): {' '.join(argv)}\n"
                           f"{(proc.stdout + proc.stderr)[-3000:]}")


def build_wheel(root: Path = REPO_ROOT, cache: Path = CACHE_DIR) -> tuple[Path, str]:
    """(wheel path, source digest); reuses the cached wheel when the sources are unchanged."""
    digest = source_digest(root)
    out = cache / "wheels" / digest
    found = sorted(out.glob("lighthouse-*.whl")) if out.is_dir() else []
    if found:
        return found[0], digest
    tmp = out.with_name(digest + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    uv = Path(sys.executable).with_name("uv")
    if uv.exists():
        argv = [str(uv), "build", "--wheel", "--out-dir", str(tmp), str(root)]
    else:
        argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp), str(root)]
    log.info("event=build_wheel digest=%s", digest)
    _run(argv, "building the lighthouse wheel", env)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return sorted(out.glob("lighthouse-*.whl"))[0], digest


def wheel_requirements(wheel: Path) -> tuple[str, list[str]]:
    """(version, Requires-Dist without extras-only entries) from the wheel's METADATA."""
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(meta_name).decode())
    reqs = [r for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r]
    return meta["Version"], reqs


# Extras the hosts install besides the prober's own dependencies (the db host's
# lighthouse-dump needs boto3); ops and test stay on the controller.
HOST_EXTRAS = ("backup",)


def locked_requirements(root: Path = REPO_ROOT, extras: tuple[str, ...] = HOST_EXTRAS) -> str:
    """The hosts' dependencies exactly as uv.lock pins them, with hashes (`uv export`)."""
    uv = Path(sys.executable).with_name("uv")
    argv = [str(uv) if uv.exists() else "uv", "export", "--locked", "--format",
            "requirements-txt", "--no-emit-project", "--no-dev", "--no-header", "--quiet",
            "--project", str(root), *(f"--extra={e}" for e in extras)]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ReleaseError("exporting the locked requirements failed (uv.lock out of date with "
                           f"pyproject.toml? run `.venv/bin/uv lock`): {proc.stderr.strip()}")
    return proc.stdout


def build_wheelhouse(
    requirements: str,
    python_version: str,
    platforms: tuple[str, ...] = DEFAULT_PLATFORMS,
    cache: Path = CACHE_DIR,
) -> Path:
    """Directory of binary wheels for `requirements` (a hash-pinned requirements file's text)
    on the target Python; cached by inputs. pip checks every wheel against its lock hash."""
    key = hashlib.sha256(
        json.dumps([requirements, python_version, list(platforms)]).encode()
    ).hexdigest()[:12]
    out = cache / "wheelhouse" / f"py{python_version}-{key}"
    if (out / ".complete").exists():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    reqs = tmp.parent / f"{out.name}.requirements.txt"
    reqs.write_text(requirements)
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
            "--only-binary=:all:", "--require-hashes", "--no-deps", "--python-version",
            python_version, "--implementation", "cp", "-d", str(tmp), "-r", str(reqs)]
    for plat in platforms:
        argv += ["--platform", plat]
    log.info("event=build_wheelhouse python=%s requirements=%s", python_version, reqs)
    _run(argv, "downloading the wheelhouse")
    (tmp / ".complete").write_text(requirements)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def build_release(python_version: str = "3.13", root: Path = REPO_ROOT,
                  cache: Path = CACHE_DIR, arch: str = "x86_64") -> Release:
    """The wheel and a wheelhouse for hosts running CPython `python_version` on `arch`."""
    if arch not in PLATFORMS:
        raise ReleaseError(f"no wheel platforms known for host CPU {arch!r} "
                           f"(known: {', '.join(PLATFORMS)})")
    wheel, digest = build_wheel(root, cache)
    version, _ = wheel_requirements(wheel)
    wheelhouse = build_wheelhouse(locked_requirements(root), python_version,
                                  platforms=PLATFORMS[arch], cache=cache)
    return Release(version=version, digest=digest, wheel=wheel, wheelhouse=wheelhouse,
                   python_version=python_version)


def stack_hosts_target(inventory: Path) -> tuple[str, str]:
    """(Python major.minor, CPU) of a stack's hosts, from its generated inventory (the stack
    decides them by image: infra.config.OS_PYTHON, HOST_ARCH)."""
    import yaml

    try:
        doc = yaml.safe_load(inventory.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ReleaseError(f"{inventory}: cannot read the inventory: {exc}") from None
    top = (doc.get("all") or {}).get("vars") or {} if isinstance(doc, dict) else {}
    python, arch = top.get("prober_python_version"), top.get("lighthouse_host_arch")
    if not python or not arch:
        raise ReleaseError(f"{inventory}: no prober_python_version / lighthouse_host_arch in "
                           "all.vars: regenerate it with `pulumi stack output "
                           "ansible_inventory > inventories/aws/hosts.yml`")
    return str(python), str(arch)
