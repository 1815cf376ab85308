"""Ansible filter over the project's one tuning rule set (app/lighthouse_ops/dbops/tuning.py).

Loaded by path rather than imported so the role works from any Python that runs Ansible,
with or without the project installed; db.tune imports the same file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_RULES = Path(__file__).resolve().parents[3] / "app/lighthouse_ops/dbops/tuning.py"
_spec = importlib.util.spec_from_file_location("lighthouse_tuning_rules", _RULES)
if _spec is None or _spec.loader is None:  # pragma: no cover - a broken checkout
    raise ImportError(f"tuning rules not found at {_RULES}")
_rules = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_rules)


class FilterModule:
    """{{ ansible_memtotal_mb | timescaledb_tune(cpus, ...) }} and {{ n | pg_bytes }}."""

    def filters(self):
        return {"timescaledb_tune": _rules.timescaledb_tune, "pg_bytes": _rules.pg_bytes}
