"""cost.estimate / cost.compare output: the seeds' published figures come out of the
runbooks, formatted; every number is infra.cost's (no second price table here)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from invoke import Collection, Program
from lighthouse_ops.cost import (
    CostError,
    EstimateReport,
    compare_report,
    estimate_report,
    percent,
    staleness,
    unit_usd,
    usd,
)
from lighthouse_ops.tasks import cost as cost_tasks

from infra import cost

ROOT = Path(__file__).resolve().parents[3]
FRESH = date(2025, 11, 1)  # a day the price file (as of 2025-10-29) counts as current


def _row(text: str, option: str) -> str:
    return next(line for line in text.splitlines() if line.strip().startswith(option + " "))


def test_compare_reproduces_seed_002_table():
    text = compare_report(3, today=FRESH).text()
    # Seed 002, "Pricing Breakdown" for options B (EC2), C (spot) and A (RDS).
    assert _row(text, "EC2 on-demand").split()[2:] == [
        "$96.84", "$263.28", "$869.76", "$1,229.88"]
    assert _row(text, "EC2 spot").split()[2:] == ["$44.16", "$157.80", "$657.60", "$859.56"]
    assert _row(text, "RDS").split()[1:] == ["$173.52", "$452.52", "$1,982.28", "$2,608.32"]
    # Seed 002: "$1,378 saved (53%)" for EC2 vs RDS; spot "67% cheaper than RDS".
    assert "EC2 on-demand saves $1,378.44 (53%)" in " ".join(text.split())
    assert "EC2 spot saves $1,748.76 (67%)" in " ".join(text.split())
    assert "cheapest: EC2 spot ($859.56)" in text
    assert "warning" not in text


def test_compare_fewer_years_and_bad_years():
    text = compare_report(1, today=FRESH).text()
    assert "1-year cost" in text and _row(text, "EC2 on-demand").split()[2:] == [
        "$96.84", "$96.84"]
    with pytest.raises(CostError, match=r"1\.\.3"):
        compare_report(4)


def test_compare_json_has_the_same_figures():
    data = json.loads(compare_report(3).json())
    rows = {r["option"]: r for r in data["rows"]}
    assert rows["RDS"]["yearly_usd"] == [173.52, 452.52, 1982.28]
    assert rows["EC2 spot"]["total_usd"] == 859.56
    assert data["prices_as_of"] == "2025-10-29"


def test_estimate_report_formats_seed_004_production_year_1():
    # Seed 004 "Production Year 1": t4g.small + 100 GB, 10 GB snapshots, $2.30 monitoring.
    breakdown = cost.ec2_scenario("seed 004 prod year 1", "t4g.small", ebs_gb=100,
                                  snapshot_gb=10, alarms=3, logs_usd=2)
    text = EstimateReport("prod", breakdown, today=FRESH).text()
    assert text.splitlines()[-1].split() == ["total", "$23.06/month,", "$276.72/year"]
    assert "730 hours       x   $0.0168  =    $12.26/month" in text
    # lines are ordered by cost, largest first
    assert text.splitlines()[1].split()[0] == "t4g.small"


def test_estimate_of_repository_stacks_matches_infra_cost():
    from infra.config import load_stack_file

    for stack in ("dev", "prod"):
        report = estimate_report(stack, today=FRESH)
        expected = cost.estimate(load_stack_file(ROOT / f"Pulumi.{stack}.yaml", stack))
        assert f"{usd(expected.monthly)}/month, {usd(expected.yearly)}/year" in report.text()
        data = json.loads(report.json())
        assert data["stack"] == stack and data["monthly_usd"] == float(expected.monthly)


def test_unknown_stack_lists_the_known_ones():
    with pytest.raises(CostError, match=r"Pulumi\.staging\.yaml \(known stacks: dev, prod"):
        estimate_report("staging")


def test_invalid_stack_file_names_file_and_key(tmp_path):
    (tmp_path / "Pulumi.bad.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  lighthouse:database:\n    instanceType: m5.banana\n")
    with pytest.raises(CostError, match=r"Pulumi\.bad\.yaml.*instanceType"):
        estimate_report("bad", root=tmp_path)


def test_old_prices_are_flagged():
    assert staleness(date(2025, 10, 29), today=date(2026, 11, 1)) is not None
    assert staleness(date(2025, 10, 29), today=date(2026, 10, 1)) is None
    assert "warning: prices are" in compare_report(3, today=date(2027, 1, 1)).text()


def test_money_formatting():
    assert usd(Decimal("2608.32")) == "$2,608.32"
    assert unit_usd(Decimal("0.0084")) == "$0.0084" and unit_usd(Decimal("3")) == "$3.00"
    assert percent(Decimal("1378.44"), Decimal("2608.32")) == "53%"


def _invoke(*argv: str) -> None:
    ns = Collection()
    ns.add_collection(Collection.from_module(cost_tasks))
    Program(namespace=ns, version="0").run(["invoke", *argv], exit=False)


def test_tasks_print_the_reports(capsys):
    _invoke("cost.compare")
    assert "$1,229.88" in capsys.readouterr().out
    _invoke("cost.estimate", "--stack", "dev", "--json")
    assert json.loads(capsys.readouterr().out)["stack"] == "dev"
    with pytest.raises(SystemExit, match="no stack file"):
        _invoke("cost.estimate", "--stack", "nope")


def test_history_disk_uses_the_measured_bytes_per_check():
    from lighthouse.db.compaction import PACKED_BYTES_PER_CHECK, RAW_BYTES_PER_CHECK

    h = cost.history_disk(500, 60, retention_days=90, compact_after_days=2)
    per_day = 500 * 1440
    assert h.raw_days == 3
    assert h.raw_gb == Decimal(per_day * 3 * RAW_BYTES_PER_CHECK) / 10**9
    assert h.packed_gb == Decimal(per_day * 87 * PACKED_BYTES_PER_CHECK) / 10**9
    assert h.volume_gb == (h.history_gb / Decimal("0.7")).quantize(Decimal("0.1"))
    assert cost.history_disk(10, 60, retention_days=2).packed_gb == 0  # all of it raw
    with pytest.raises(ValueError, match="interval_s > 0"):
        cost.history_disk(10, 0)


def test_disk_task_holds_the_history_against_the_stack_volume(capsys):
    _invoke("cost.disk", "--stack", "prod", "--monitors", "500")
    out = capsys.readouterr().out
    assert "500 monitors every 60 s, 90 days kept" in out and "holds it" in out
    _invoke("cost.disk", "--stack", "dev", "--monitors", "5000", "--interval-s", "30")
    out = capsys.readouterr().out
    assert "TOO SMALL: raise database.dataVolume.sizeGb to at least" in out
    with pytest.raises(SystemExit, match="interval_s > 0"):
        _invoke("cost.disk", "--monitors", "5", "--interval-s", "0")
