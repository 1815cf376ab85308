"""The Pulumi stack's view of the database host, read from `Pulumi.<stack>.yaml`.

The runbooks change things Pulumi also manages (instance type, data volume size); they
refuse to act when the stack config says otherwise and print the `pulumi config set`
command that brings the config in line first, so the next `pulumi up` does not undo the
change. Parsing and validation are infra.config's (the Pulumi program's own reader).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lighthouse_ops.aws.runbook import RunbookRefused

# Config paths as the Pulumi program reads them (nested objects: `pulumi config set --path`).
INSTANCE_TYPE_KEY = "lighthouse:database.instanceType"
VOLUME_SIZE_KEY = "lighthouse:database.dataVolume.sizeGb"
SPOT_KEY = "lighthouse:database.spot"


@dataclass(frozen=True)
class StackConfig:
    stack: str
    path: Path
    values: dict[str, object]

    def get(self, key: str) -> object | None:
        return self.values.get(key)

    def set_command(self, key: str, value: object) -> str:
        return f"pulumi config set --stack {self.stack} --path '{key}' {value}"


def load_stack_config(stack: str, root: Path) -> StackConfig:
    from infra.config import ConfigError, load_stack_file

    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise RunbookRefused(f"stack config {path} not found (is --stack {stack!r} right?)")
    try:
        cfg = load_stack_file(path, stack)
    except ConfigError as exc:
        raise RunbookRefused(f"invalid stack config: {exc}") from exc
    db = cfg.database
    return StackConfig(stack, path, {INSTANCE_TYPE_KEY: db.instance_type,
                                     VOLUME_SIZE_KEY: db.data_volume.size_gb,
                                     SPOT_KEY: db.spot})


def require_matches(cfg: StackConfig, key: str, wanted: object, what: str) -> None:
    """Refuse unless the stack config holds `wanted` for `key` (compared as text)."""
    current = cfg.get(key)
    if current is None:
        raise RunbookRefused(
            f"{cfg.path}: key {key!r} is missing, so the stack's {what} is unknown.\n"
            f"  Set it first so Pulumi state does not drift: {cfg.set_command(key, wanted)}")
    if str(current) != str(wanted):
        raise RunbookRefused(
            f"{cfg.path}: {key} = {current}, but this run would make the {what} {wanted}.\n"
            f"  Update the stack config first so Pulumi state does not drift:\n"
            f"    {cfg.set_command(key, wanted)}\n"
            f"  then re-run; after the runbook, `pulumi refresh --stack {cfg.stack}` records it.")
