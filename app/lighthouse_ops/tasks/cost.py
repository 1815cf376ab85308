"""invoke tasks: cost (see tasks.py) — reports over infra.cost and infra/prices.json."""

from __future__ import annotations

import sys

from lighthouse_ops.tasks.flags import runbook as task


@task(help={"stack": "stack whose Pulumi.<stack>.yaml to price (dev|prod)",
            "json": "print JSON instead of the table"})
def estimate(c, stack="prod", json=False):
    """Monthly and yearly cost of a Pulumi stack.

    Line by line from infra.cost and the dated infra/prices.json.
    """
    from lighthouse_ops.cost import CostError, estimate_report

    try:
        report = estimate_report(stack)
    except CostError as exc:
        sys.exit(f"cost.estimate: {exc}")
    print(report.json() if json else report.text())


@task(help={"years": "years of the seed's growth path to compare (1-3)",
            "json": "print JSON instead of the table"})
def compare(c, years=3, json=False):
    """EC2 on-demand vs spot vs RDS, by year.

    Over the seed's growth path, with savings against RDS.
    """
    from lighthouse_ops.cost import CostError, compare_report

    try:
        report = compare_report(int(years))
    except (CostError, ValueError) as exc:
        sys.exit(f"cost.compare: {exc}")
    print(report.json() if json else report.text())


@task(help={"stack": "stack whose data volume to hold it against (dev|prod)",
            "monitors": "monitors checked",
            "interval_s": "seconds between checks of a monitor (default 60)",
            "retention_days": "days of check history kept (default 90)"})
def disk(c, stack="prod", monitors=500, interval_s=60.0, retention_days=90):
    """Disk that check history needs (measured bytes per check), against the stack's volume."""
    from lighthouse_ops.cost import CostError, disk_report

    try:
        print(disk_report(stack, int(monitors), float(interval_s), int(retention_days)))
    except (CostError, ValueError) as exc:
        sys.exit(f"cost.disk: {exc}")

