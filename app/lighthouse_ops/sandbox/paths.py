"""Where the sandbox keeps its cache, its runtime state and its inventories."""

from __future__ import annotations

import os
from pathlib import Path

# Root filesystem tarballs and apt caches: survive `down`, shared by every sandbox.
CACHE_ROOT = Path(os.environ.get("LIGHTHOUSE_SANDBOX_CACHE", "/var/cache/lighthouse-sandbox"))
# Runtime state of running sandboxes: removed by `down`.
STATE_ROOT = Path(os.environ.get("LIGHTHOUSE_SANDBOX_STATE", "/var/lib/lighthouse-sandbox"))
# The repository (editable install: app/lighthouse_ops/sandbox/paths.py -> repo root); from an
# installed wheel, the directory the operator runs in.
_SOURCE_ROOT = Path(__file__).resolve().parents[3]
REPO_ROOT = _SOURCE_ROOT if (_SOURCE_ROOT / "pyproject.toml").exists() else Path.cwd()


def sandbox_dir(name: str) -> Path:
    return STATE_ROOT / "sandboxes" / name


def host_dir(name: str, host: str) -> Path:
    return sandbox_dir(name) / "hosts" / host


def inventory_path(name: str, repo_root: Path = REPO_ROOT) -> Path:
    """`local` writes the repository's inventories/local/; other sandboxes .sandbox/<name>/."""
    if name == "local":
        return repo_root / "inventories" / "local" / "hosts.yml"
    return repo_root / ".sandbox" / name / "hosts.yml"
