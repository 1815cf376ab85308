"""Every collection plugin the repository names is in requirements.yml (the AWS path cannot
start with a collection that nobody installs)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
FQCN = re.compile(r"\b(?!ansible\.builtin\.)([a-z_]+\.[a-z_]+)\.[a-z_]+\b")
WHERE = ("inventories", "playbooks", "roles", "infra", "app/lighthouse_ops")


def referenced_collections() -> set[str]:
    found: set[str] = set()
    for top in WHERE:
        for path in (ROOT / top).rglob("*"):
            if path.suffix in {".yml", ".yaml", ".py", ".j2"} and path.is_file():
                found |= {m for m in FQCN.findall(path.read_text())
                          if m.split(".")[0] in {"amazon", "community", "ansible"}}
    return found - {"ansible.builtin"}


def test_requirements_name_every_collection_used() -> None:
    wanted = {c["name"] for c in yaml.safe_load((ROOT / "requirements.yml").read_text())
              ["collections"]}
    used = referenced_collections()
    assert "amazon.aws" in used  # the scan still finds the known one
    assert used <= wanted, f"collections used but not in requirements.yml: {used - wanted}"
