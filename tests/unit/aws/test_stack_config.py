"""Pulumi stack config checks: agreement passes; disagreement is refused with the exact
`pulumi config set` command; the committed dev/prod files are readable."""

from __future__ import annotations

from pathlib import Path

import pytest
from lighthouse_ops.aws.runbook import RunbookRefused
from lighthouse_ops.aws.stack_config import (
    INSTANCE_TYPE_KEY,
    VOLUME_SIZE_KEY,
    load_stack_config,
    require_matches,
)

ROOT = Path(__file__).resolve().parents[3]


def _write(tmp_path, itype: str = "t4g.small", size: int = 100):
    (tmp_path / "Pulumi.prod.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  lighthouse:database:\n"
        f"    instanceType: {itype}\n    dataVolume:\n      sizeGb: {size}\n")
    return load_stack_config("prod", tmp_path)


def test_matching_value_passes(tmp_path):
    cfg = _write(tmp_path)
    require_matches(cfg, INSTANCE_TYPE_KEY, "t4g.small", "type")
    require_matches(cfg, VOLUME_SIZE_KEY, 100, "size")


def test_disagreement_prints_the_exact_command(tmp_path):
    cfg = _write(tmp_path, itype="t4g.micro")
    with pytest.raises(RunbookRefused) as err:
        require_matches(cfg, INSTANCE_TYPE_KEY, "t4g.small", "database instance type")
    msg = str(err.value)
    assert ("pulumi config set --stack prod --path 'lighthouse:database.instanceType' "
            "t4g.small") in msg
    assert "t4g.micro" in msg and "Pulumi.prod.yaml" in msg


def test_missing_file_and_invalid_value_are_refused_by_name(tmp_path):
    with pytest.raises(RunbookRefused, match=r"Pulumi\.dev\.yaml not found"):
        load_stack_config("dev", tmp_path)
    with pytest.raises(RunbookRefused, match="instanceType"):
        _write(tmp_path, itype="banana")


def test_repository_stacks_are_readable():
    for stack in ("dev", "prod"):
        cfg = load_stack_config(stack, ROOT)
        assert str(cfg.get(INSTANCE_TYPE_KEY)).startswith("t4g.")
        assert int(str(cfg.get(VOLUME_SIZE_KEY))) >= 20
