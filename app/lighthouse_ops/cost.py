"""Cost reports for `invoke cost.estimate` / `cost.compare`: formatting only.

Every figure comes from infra.cost (the Pulumi program's cost model) and its dated price
file infra/prices.json; nothing here knows a price. This module adds what an operator
reads: money with thousands separators, yearly columns, savings between options, and a
warning when the price file is old.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STALE_AFTER_DAYS = 365
BASELINE = "RDS"


class CostError(ValueError):
    """Bad input (unknown stack, invalid stack file); the message names the file/key."""


def usd(value: Decimal) -> str:
    return f"${value:,.2f}"


def unit_usd(value: Decimal) -> str:
    """A unit price at its own precision ($0.0084/hour), at least to the cent."""
    exponent = value.normalize().as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"${value:,.{places}f}"


def percent(part: Decimal, whole: Decimal) -> str:
    if not whole:
        return "-"
    return f"{(part / whole * 100).quantize(Decimal('1'), rounding=ROUND_HALF_UP)}%"


def staleness(as_of: date, today: date | None = None) -> str | None:
    age = ((today or date.today()) - as_of).days
    if age > STALE_AFTER_DAYS:
        return (f"prices are {age} days old (as of {as_of.isoformat()}): re-check them and "
                "update infra/prices.json with a new as_of")
    return None


def stacks(root: Path = ROOT) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def _load_stack(stack: str, root: Path):
    from infra.config import ConfigError, load_stack_file

    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = ", ".join(stacks(root)) or "none"
        raise CostError(f"no stack file {path.name} (known stacks: {known})")
    try:
        return load_stack_file(path, stack)
    except ConfigError as exc:
        raise CostError(str(exc)) from exc


@dataclass(frozen=True)
class EstimateReport:
    stack: str
    breakdown: Any  # infra.cost.CostBreakdown
    today: date | None = None

    def text(self) -> str:
        b = self.breakdown
        width = max(len(i.name) for i in b.items)
        lines = [f"cost.estimate: stack {self.stack} (prices as of {b.as_of.isoformat()}, "
                 "infra/prices.json)"]
        for i in sorted(b.items, key=lambda i: i.monthly, reverse=True):
            lines.append(f"  {i.name:<{width}}  {i.quantity.normalize():>9,f} {i.unit:<11} "
                         f"x {unit_usd(i.unit_price):>9}  = {usd(i.monthly):>9}/month  "
                         f"{percent(i.monthly, b.monthly):>4}")
        lines.append(f"  {'total':<{width}}  {usd(b.monthly)}/month, {usd(b.yearly)}/year")
        if warning := staleness(b.as_of, self.today):
            lines.append(f"  warning: {warning}")
        return "\n".join(lines)

    def json(self) -> str:
        return json.dumps({"stack": self.stack, **self.breakdown.to_dict()}, indent=2)


def estimate_report(stack: str, root: Path = ROOT, today: date | None = None) -> EstimateReport:
    from infra import cost

    return EstimateReport(stack, cost.estimate(_load_stack(stack, root)), today)


def disk_report(stack: str, monitors: int, interval_s: float, retention_days: int,
                root: Path = ROOT) -> str:
    from lighthouse.db.compaction import PACKED_BYTES_PER_CHECK, RAW_BYTES_PER_CHECK

    from infra import cost

    cfg = _load_stack(stack, root)
    h = cost.history_disk(monitors, interval_s, retention_days)
    have = cfg.database.data_volume.size_gb
    verdict = ("holds it" if have >= h.volume_gb else
               f"TOO SMALL: raise database.dataVolume.sizeGb to at least {h.volume_gb}")
    rows = [(f"raw (newest {h.raw_days:g} days, {RAW_BYTES_PER_CHECK} B/check)", h.raw_gb),
            (f"packed (the rest, {PACKED_BYTES_PER_CHECK} B/check)", h.packed_gb),
            (f"volume with {h.headroom:.0%} free (WAL, rollups, vacuum)", h.volume_gb)]
    return "\n".join(
        [f"cost.disk: {monitors} monitors every {interval_s:g} s, {retention_days} days kept"]
        + [f"  {label:<46}{value:>9.2f} GB" for label, value in rows]
        + [f"  stack {stack}: data volume {have} GB: {verdict}"])


@dataclass(frozen=True)
class CompareReport:
    comparison: Any  # infra.cost.Comparison
    today: date | None = None

    def text(self) -> str:
        c = self.comparison
        years = len(c.rows[0].years) if c.rows else 0
        width = max(len(r.option) for r in c.rows)
        head = f"  {'option':<{width}}" + "".join(f"{'year ' + str(y + 1):>12}"
                                                   for y in range(years)) + f"{'total':>13}"
        lines = [f"cost.compare: {years}-year cost by option, USD/year "
                 f"(prices as of {c.as_of.isoformat()}, infra/prices.json)", head]
        for r in c.rows:
            lines.append(f"  {r.option:<{width}}" + "".join(f"{usd(v):>12}" for v in r.yearly)
                         + f"{usd(r.total):>13}")
        baseline = next((r for r in c.rows if r.option == BASELINE), None)
        if baseline is not None:
            lines.append(f"  against {BASELINE} over {years} year(s):")
            for r in c.rows:
                if r is baseline:
                    continue
                saved = baseline.total - r.total
                verb = "saves" if saved >= 0 else "costs"
                lines.append(f"    {r.option:<{width}} {verb} {usd(abs(saved))} "
                             f"({percent(abs(saved), baseline.total)})")
        cheapest = min(c.rows, key=lambda r: r.total)
        lines.append(f"  cheapest: {cheapest.option} ({usd(cheapest.total)})")
        lines += [f"  note: {n}" for n in c.notes]
        if warning := staleness(c.as_of, self.today):
            lines.append(f"  warning: {warning}")
        return "\n".join(lines)

    def json(self) -> str:
        c = self.comparison
        return json.dumps({
            "prices_as_of": c.as_of.isoformat(),
            "rows": [{"option": r.option, "yearly_usd": [float(v) for v in r.yearly],
                      "total_usd": float(r.total)} for r in c.rows],
            "notes": list(c.notes)}, indent=2)


def compare_report(years: int = 3, today: date | None = None) -> CompareReport:
    from infra import cost

    try:
        return CompareReport(cost.compare(years=years), today)
    except ValueError as exc:
        raise CostError(str(exc)) from exc
