"""Monthly cost model for the Lighthouse AWS topology.

Prices live in one dated data file, ``infra/prices.json`` (``"as_of"``); usage figures that a
price list cannot know (snapshot share, egress, log volume) come from the stack config
(``lighthouse:cost``). No Pulumi import: the runbooks use this module directly.

API (used by ``invoke cost.estimate`` / ``invoke cost.compare``)::

    from infra.config import load_stack_file
    from infra import cost

    cfg = load_stack_file("Pulumi.prod.yaml")
    breakdown = cost.estimate(cfg)          # -> CostBreakdown
    breakdown.monthly, breakdown.yearly     # Decimal, USD, rounded to cents
    print(breakdown.format())               # one line per item, then the total
    breakdown.to_dict()                     # JSON-friendly

    table = cost.compare(years=3)           # -> Comparison (seed 002's growth path)
    print(table.format())
    table.row("EC2 on-demand").total        # Decimal

    prices = cost.load_prices()             # -> Prices; pass ``prices=`` to either call

Arithmetic follows the seeds' own method so their examples are reproducible: every line item
is ``quantity x unit price`` rounded to cents (half-up), the monthly total is the sum of the
rounded lines, the yearly figure is ``monthly x 12``. A month is 730 hours.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from infra.config import NAT_INSTANCE_TYPE, NAT_ROOT_GB, StackConfig

PRICES_FILE = Path(__file__).with_name("prices.json")
CENT = Decimal("0.01")


def _d(value: Any) -> Decimal:
    # str() first: Decimal(0.0084) would carry the binary float's error into the cents.
    return value if isinstance(value, Decimal) else Decimal(str(value))


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Prices:
    as_of: date
    region: str
    hours_per_month: Decimal
    ec2_hourly: Mapping[str, Decimal]
    ec2_spot_hourly: Mapping[str, Decimal]
    spot_price_fraction: Decimal
    ebs_gp3_gb_month: Decimal
    ebs_gp3_included_iops: int
    ebs_gp3_iops_month: Decimal
    ebs_gp3_included_throughput_mibps: int
    ebs_gp3_throughput_mibps_month: Decimal
    ebs_snapshot_gb_month: Decimal
    rds_hourly: Mapping[str, Decimal]
    rds_gp3_gb_month: Decimal
    rds_backup_gb_month: Decimal
    s3_standard_gb_month: Decimal
    data_transfer_out_gb: Decimal
    inter_region_gb: Decimal  # between regions (over a cross-region VPC peering too)
    cloudwatch_alarm_month: Decimal
    cloudwatch_dashboard_month: Decimal
    cloudwatch_metric_month: Decimal
    secrets_manager_secret_month: Decimal
    public_ipv4_hour: Decimal
    vpc_interface_endpoint_hour: Decimal
    nat_gateway_hour: Decimal
    nat_gateway_gb: Decimal
    source: str = ""

    def ec2_hourly_price(self, instance_type: str, spot: bool) -> Decimal:
        """On-demand price, or for spot the quoted spot price / on-demand x fraction."""
        try:
            on_demand = self.ec2_hourly[instance_type]
        except KeyError:
            raise KeyError(
                f"{PRICES_FILE.name}: ec2_hourly has no price for {instance_type!r}"
            ) from None
        if not spot:
            return on_demand
        return self.ec2_spot_hourly.get(instance_type, on_demand * self.spot_price_fraction)

    def without_spot_quotes(self) -> Prices:
        """Spot = on-demand x spot_price_fraction for every type (seed 004's formula)."""
        return replace(self, ec2_spot_hourly={})


def load_prices(path: str | Path = PRICES_FILE) -> Prices:
    """Read the dated price file; a missing or malformed field names the file and key."""
    path = Path(path)
    raw = json.loads(path.read_text())
    try:
        fields: dict[str, Any] = {}
        for name, kind in Prices.__annotations__.items():
            if name == "source":
                fields[name] = raw.get("source", "")
            elif name == "as_of":
                fields[name] = date.fromisoformat(raw["as_of"])
            elif name == "region":
                fields[name] = str(raw["region"])
            elif "Mapping" in str(kind):
                fields[name] = {k: _d(v) for k, v in raw[name].items()}
            elif kind == "int" or kind is int:
                fields[name] = int(raw[name])
            else:
                fields[name] = _d(raw[name])
    except KeyError as exc:
        raise ValueError(f"{path}: missing price key {exc.args[0]!r}") from None
    return Prices(**fields)


@dataclass(frozen=True)
class LineItem:
    name: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    monthly: Decimal

    @classmethod
    def of(cls, name: str, quantity: Any, unit: str, unit_price: Any) -> LineItem:
        q, p = _d(quantity), _d(unit_price)
        return cls(name, q, unit, p, cents(q * p))


@dataclass(frozen=True)
class CostBreakdown:
    label: str
    items: tuple[LineItem, ...]
    as_of: date

    @property
    def monthly(self) -> Decimal:
        return sum((i.monthly for i in self.items), Decimal("0.00"))

    @property
    def yearly(self) -> Decimal:
        return self.monthly * 12

    def item(self, name: str) -> LineItem:
        for i in self.items:
            if i.name == name:
                return i
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "prices_as_of": self.as_of.isoformat(),
            "monthly_usd": float(self.monthly),
            "yearly_usd": float(self.yearly),
            "items": [
                {"name": i.name, "quantity": float(i.quantity), "unit": i.unit,
                 "unit_price_usd": float(i.unit_price), "monthly_usd": float(i.monthly)}
                for i in self.items
            ],
        }

    def format(self) -> str:
        lines = [f"{self.label} (prices as of {self.as_of.isoformat()})"]
        for i in self.items:
            qty = f"{i.quantity:>8} {i.unit:<10}"
            lines.append(f"  {i.name:<28} {qty} x ${i.unit_price:<8} = ${i.monthly:>8}")
        lines.append(f"  {'TOTAL':<28} ${self.monthly}/month = ${self.yearly}/year")
        return "\n".join(lines)


# --- scenarios (the seeds' way of pricing a year) ------------------------------------------


def ec2_scenario(label: str, instance_type: str, *, spot: bool = False, ebs_gb: float = 0,
                 snapshot_gb: float = 0, egress_gb: float = 0, alarms: int = 0,
                 logs_usd: float = 0, prices: Prices | None = None) -> CostBreakdown:
    """One EC2 db host + gp3 volume, priced like seeds 002 (Options B/C) and 004."""
    p = prices or load_prices()
    hourly = p.ec2_hourly_price(instance_type, spot)
    items = [LineItem.of(f"{instance_type}{' spot' if spot else ''}", p.hours_per_month,
                         "hours", hourly)]
    if spot and instance_type not in p.ec2_spot_hourly:
        # Seed 004 multiplies the rounded on-demand month by the fraction: same to the cent.
        items[0] = LineItem.of(f"{instance_type} spot",
                               cents(p.hours_per_month * p.ec2_hourly[instance_type]),
                               "USD", p.spot_price_fraction)
    if ebs_gb:
        items.append(LineItem.of("ebs gp3", ebs_gb, "GB-month", p.ebs_gp3_gb_month))
    if snapshot_gb:
        items.append(LineItem.of("snapshots", snapshot_gb, "GB-month", p.ebs_snapshot_gb_month))
    if egress_gb:
        items.append(LineItem.of("data transfer out", egress_gb, "GB", p.data_transfer_out_gb))
    if alarms:
        items.append(LineItem.of("cloudwatch alarms", alarms, "alarms", p.cloudwatch_alarm_month))
    if logs_usd:
        items.append(LineItem.of("cloudwatch logs", 1, "estimate", logs_usd))
    return CostBreakdown(label, tuple(items), p.as_of)


def rds_scenario(label: str, instance_class: str, *, storage_gb: float, backup_gb: float,
                 multi_az: bool = False, prices: Prices | None = None) -> CostBreakdown:
    """RDS for PostgreSQL priced like seed 002 Option A (Multi-AZ doubles the instance only,
    as the seed does; AWS also doubles storage: see docs/pulumi.md)."""
    p = prices or load_prices()
    items = [
        LineItem.of(instance_class, p.hours_per_month, "hours", p.rds_hourly[instance_class]),
        LineItem.of("rds gp3", storage_gb, "GB-month", p.rds_gp3_gb_month),
        LineItem.of("rds backup", backup_gb, "GB-month", p.rds_backup_gb_month),
    ]
    if multi_az:
        items.append(LineItem.of(f"{instance_class} multi-az standby", p.hours_per_month,
                                 "hours", p.rds_hourly[instance_class]))
    return CostBreakdown(label, tuple(items), p.as_of)


def patroni_scenario(label: str, instance_type: str, *, members: int = 3, ebs_gb: float = 0,
                     snapshot_gb: float = 0, egress_gb: float = 0,
                     prices: Prices | None = None) -> CostBreakdown:
    """Architecture C: `members` EC2 db hosts (Patroni + etcd on each), each with its own gp3
    volume of the full size (every member holds all the data); backups of one member."""
    one = ec2_scenario(label, instance_type, ebs_gb=ebs_gb, prices=prices)
    items = tuple(LineItem.of(f"{i.name} x{members}", i.quantity * members, i.unit, i.unit_price)
                  for i in one.items)
    extra = ec2_scenario(label, instance_type, snapshot_gb=snapshot_gb, egress_gb=egress_gb,
                         prices=prices).items[1:]
    return CostBreakdown(label, items + extra, one.as_of)


# --- a whole stack -------------------------------------------------------------------------


def estimate(cfg: StackConfig, prices: Prices | None = None) -> CostBreakdown:
    """Estimated monthly cost of the resources the stack ``cfg`` creates.

    Counts what the seeds left out: root volumes, public IPv4 addresses (billed since
    2024-02, a NAT's too), the NAT, the Secrets Manager secret, interface endpoints, every
    alarm and the dashboard.
    """
    p = prices or load_prices()
    db, probers, vol = cfg.database, cfg.probers, cfg.database.data_volume
    members = db.member_count
    x = f" x{members}" if members > 1 else ""
    items = [LineItem.of(f"db {db.instance_type}{' spot' if db.spot else ''}{x}",
                         p.hours_per_month * members, "hours",
                         p.ec2_hourly_price(db.instance_type, db.spot))]
    if probers.instance_count:
        items.append(LineItem.of(
            f"probers {probers.instance_type}{' spot' if probers.spot else ''}",
            p.hours_per_month * probers.instance_count, "hours",
            p.ec2_hourly_price(probers.instance_type, probers.spot)))
    if probers.remote_count:
        # at the price file's region's rates: other regions' are often 5-25 % higher
        items.append(LineItem.of(
            f"remote probers {probers.instance_type}{' spot' if probers.spot else ''}",
            p.hours_per_month * probers.remote_count, "hours",
            p.ec2_hourly_price(probers.instance_type, probers.spot)))
        # their results (and the database's replies) cross regions over the peering
        items.append(LineItem.of("inter-region transfer",
                                 _d(cfg.cost.inter_region_gb_per_prober) * probers.remote_count,
                                 "GB", p.inter_region_gb))
    instances = members + probers.instance_count + probers.remote_count
    items.append(LineItem.of("root volumes gp3", db.root_volume_gb * instances, "GB-month",
                             p.ebs_gp3_gb_month))
    # every member holds all the data on a volume of its own
    items.append(LineItem.of(f"data volume gp3{x}", vol.size_gb * members, "GB-month",
                             p.ebs_gp3_gb_month))
    if vol.iops > p.ebs_gp3_included_iops:
        items.append(LineItem.of(f"data volume iops{x}",
                                 (vol.iops - p.ebs_gp3_included_iops) * members,
                                 "IOPS-month", p.ebs_gp3_iops_month))
    if vol.throughput_mibps > p.ebs_gp3_included_throughput_mibps:
        items.append(LineItem.of(
            f"data volume throughput{x}",
            (vol.throughput_mibps - p.ebs_gp3_included_throughput_mibps) * members,
            "MiBps-month", p.ebs_gp3_throughput_mibps_month))
    if cfg.backup.enabled:
        # Incremental snapshots: one chain per schedule (daily, weekly), doubled by a copy;
        # the tag selection snapshots every member's volume.
        chains = (1 + int(cfg.backup.weekly)) * (1 + int(bool(cfg.backup.copy_to_vault_arn)))
        snapshot_gb = _d(vol.size_gb) * _d(cfg.cost.snapshot_fraction) * chains * members
        items.append(LineItem.of("snapshots", snapshot_gb, "GB-month", p.ebs_snapshot_gb_month))
    if cfg.cost.bucket_gb:
        items.append(LineItem.of("backup bucket s3", cfg.cost.bucket_gb, "GB-month",
                                 p.s3_standard_gb_month))
    if cfg.cost.egress_gb_per_month:
        items.append(LineItem.of("data transfer out", cfg.cost.egress_gb_per_month, "GB",
                                 p.data_transfer_out_gb))
    if cfg.network.nat == "gateway":
        items.append(LineItem.of("nat gateway", p.hours_per_month, "hours", p.nat_gateway_hour))
        items.append(LineItem.of("nat gateway data", cfg.cost.nat_gb_per_month, "GB",
                                 p.nat_gateway_gb))
    elif cfg.network.nat == "instance":
        items.append(LineItem.of(f"nat instance {NAT_INSTANCE_TYPE}", p.hours_per_month,
                                 "hours", p.ec2_hourly_price(NAT_INSTANCE_TYPE, False)))
        items.append(LineItem.of("nat root volume gp3", NAT_ROOT_GB, "GB-month",
                                 p.ebs_gp3_gb_month))
    if cfg.public_ip_count:  # the NAT's address included
        items.append(LineItem.of("public ipv4", p.hours_per_month * cfg.public_ip_count,
                                 "hours", p.public_ipv4_hour))
    if cfg.network.interface_endpoints:
        # billed per endpoint per zone it has a subnet in (every zone of the VPC)
        items.append(LineItem.of("vpc interface endpoints",
                                 p.hours_per_month * len(cfg.network.interface_endpoints)
                                 * cfg.zone_count, "hours", p.vpc_interface_endpoint_hour))
    if cfg.rds.enabled:
        r = cfg.rds
        # Multi-AZ bills the standby's instance hours and storage too (AWS's own pricing; the
        # seeds doubled the instance only, see docs/pulumi.md errata)
        copies = 2 if r.multi_az else 1
        label = f"rds {r.instance_class}{' multi-az' if r.multi_az else ''}"
        items.append(LineItem.of(label, p.hours_per_month * copies, "hours",
                                 p.rds_hourly[r.instance_class]))
        items.append(LineItem.of("rds gp3", r.allocated_storage_gb * copies, "GB-month",
                                 p.rds_gp3_gb_month))
    items.append(LineItem.of("secrets manager", 1, "secrets", p.secrets_manager_secret_month))
    if cfg.alarm_names:
        items.append(LineItem.of("cloudwatch alarms", len(cfg.alarm_names), "alarms",
                                 p.cloudwatch_alarm_month))
    if cfg.custom_metric_count:
        items.append(LineItem.of("cloudwatch custom metrics", cfg.custom_metric_count,
                                 "metrics", p.cloudwatch_metric_month))
    if cfg.monitoring.dashboard:
        items.append(LineItem.of("cloudwatch dashboard", 1, "dashboards",
                                 p.cloudwatch_dashboard_month))
    if cfg.cost.logs_usd_per_month:
        items.append(LineItem.of("cloudwatch logs", 1, "estimate", cfg.cost.logs_usd_per_month))
    return CostBreakdown(f"stack {cfg.stack}", tuple(items), p.as_of)


# --- 3-year comparison (seed 002's growth path) --------------------------------------------

# (instance type, EBS GB, snapshot GB, egress GB) per year, from seed 002 "Option B".
SEED_EC2_GROWTH = (
    ("t4g.micro", 20, 5, 1),
    ("t4g.small", 100, 30, 2),
    ("t4g.medium", 500, 150, 5),
)
# (instance class, storage GB, backup GB, multi-AZ) per year, from seed 002 "Option A".
SEED_RDS_GROWTH = (
    ("db.t4g.micro", 20, 5, False),
    ("db.t4g.small", 100, 30, False),
    ("db.t4g.medium", 500, 150, True),
)


@dataclass(frozen=True)
class ComparisonRow:
    option: str
    years: tuple[CostBreakdown, ...]

    @property
    def yearly(self) -> tuple[Decimal, ...]:
        return tuple(b.yearly for b in self.years)

    @property
    def total(self) -> Decimal:
        return sum(self.yearly, Decimal("0.00"))


@dataclass(frozen=True)
class Comparison:
    rows: tuple[ComparisonRow, ...]
    as_of: date
    notes: tuple[str, ...] = field(default=())

    def row(self, option: str) -> ComparisonRow:
        for r in self.rows:
            if r.option == option:
                return r
        raise KeyError(option)

    def format(self) -> str:
        n = len(self.rows[0].years) if self.rows else 0
        head = f"{'option':<22}" + "".join(f"{'year ' + str(y + 1):>12}" for y in range(n))
        lines = [f"3-year comparison (prices as of {self.as_of.isoformat()}, USD/year)",
                 head + f"{'total':>12}"]
        for r in self.rows:
            lines.append(f"{r.option:<22}" + "".join(f"{v:>12}" for v in r.yearly)
                         + f"{r.total:>12}")
        lines += [f"note: {n_}" for n_ in self.notes]
        return "\n".join(lines)


def compare(years: int = 3, prices: Prices | None = None) -> Comparison:
    """Yearly cost of the seed's options over its growth path (1 to 3 years).

    Rows: ``EC2 on-demand`` (seed Option B), ``EC2 spot`` (Option C: the seed leaves out data
    transfer there, and so do we, to stay comparable), ``RDS`` (Option A, Multi-AZ in year 3)
    and ``EC2 then RDS`` (the seed's recommended path: EC2 years 1-2, RDS year 3).
    """
    if not 1 <= years <= len(SEED_EC2_GROWTH):
        raise ValueError(f"years must be 1..{len(SEED_EC2_GROWTH)} (the seed's growth path)")
    p = prices or load_prices()
    ec2 = tuple(
        ec2_scenario(f"EC2 year {y + 1}", t, ebs_gb=gb, snapshot_gb=snap, egress_gb=eg, prices=p)
        for y, (t, gb, snap, eg) in enumerate(SEED_EC2_GROWTH[:years])
    )
    spot = tuple(
        ec2_scenario(f"spot year {y + 1}", t, spot=True, ebs_gb=gb, snapshot_gb=snap, prices=p)
        for y, (t, gb, snap, _eg) in enumerate(SEED_EC2_GROWTH[:years])
    )
    rds = tuple(
        rds_scenario(f"RDS year {y + 1}", c, storage_gb=gb, backup_gb=bk, multi_az=maz, prices=p)
        for y, (c, gb, bk, maz) in enumerate(SEED_RDS_GROWTH[:years])
    )
    mixed = tuple(rds[y] if y == 2 else ec2[y] for y in range(years))
    # The seed's other year-3 path (002 "Phase 3"): EC2 with Patroni, where year 3 is three
    # members, each with the year's instance and its own volume (snapshots of one member).
    patroni = tuple(
        patroni_scenario(f"Patroni year {y + 1}", t, ebs_gb=gb, snapshot_gb=snap, egress_gb=eg,
                         prices=p) if y == 2 else ec2[y]
        for y, (t, gb, snap, eg) in enumerate(SEED_EC2_GROWTH[:years])
    )
    rows = (
        ComparisonRow("EC2 on-demand", ec2),
        ComparisonRow("EC2 spot", spot),
        ComparisonRow("RDS", rds),
        ComparisonRow("EC2 then RDS", mixed),
        ComparisonRow("EC2 then Patroni x3", patroni),
    )
    notes: tuple[str, ...] = (
        "RDS offers no TimescaleDB: the RDS rows are vanilla PostgreSQL (DESIGN.md errata).",
        "Excludes what the seed left out; `estimate(stack)` counts it for a real stack.",
    )
    if years == 3:
        ha, maz = patroni[2].yearly, rds[2].yearly
        storage = next(i for i in rds[2].items if i.name == "rds gp3").monthly * 12
        billed = maz + storage  # AWS bills a Multi-AZ standby's storage too; the seed does not

        def versus(other: Decimal) -> str:
            pct = abs(1 - ha / other) * 100
            return f"{pct:.0f}% {'less' if ha < other else 'more'}"

        notes += (f"Year 3 with high availability: Patroni x3 {ha} USD/year, "
                  f"{versus(maz)} than RDS Multi-AZ as the seed prices it ({maz}) and "
                  f"{versus(billed)} than as AWS bills it ({billed}, storage doubled); not the "
                  "seed's 70% less: it priced one EC2 host, a cluster has three volumes.",)
    return Comparison(rows, p.as_of, notes)


# --- disk for check history (measured bytes per check, not the seeds' ~50 B assumption) -----

@dataclass(frozen=True)
class HistoryDisk:
    """check_history on disk for `monitors` checked every `interval_s`, kept `retention_days`:
    the youngest days raw, the rest packed (lighthouse.db.compaction), plus free headroom."""

    monitors: int
    interval_s: float
    retention_days: int
    raw_days: float
    raw_gb: Decimal
    packed_gb: Decimal
    headroom: Decimal = Decimal("0.3")  # WAL, rollups, vacuum and growth: keep 30 % free

    @property
    def history_gb(self) -> Decimal:
        return self.raw_gb + self.packed_gb

    @property
    def volume_gb(self) -> Decimal:
        """Smallest data volume that holds it with the headroom free."""
        return (self.history_gb / (1 - self.headroom)).quantize(Decimal("0.1"),
                                                                 rounding=ROUND_HALF_UP)


def history_disk(monitors: int, interval_s: float, retention_days: int = 90,
                 compact_after_days: float = 2.0) -> HistoryDisk:
    from lighthouse.db.compaction import PACKED_BYTES_PER_CHECK, RAW_BYTES_PER_CHECK

    if monitors < 0 or interval_s <= 0 or retention_days <= 0:
        raise ValueError("monitors >= 0, interval_s > 0 and retention_days > 0 are needed")
    per_day = _d(monitors) * _d(86400) / _d(interval_s)
    # a day is packed once it is wholly older than the age: up to age + 1 days stay raw
    raw_days = min(float(retention_days), compact_after_days + 1)
    gb = _d(10**9)
    return HistoryDisk(monitors, interval_s, retention_days, raw_days,
                       per_day * _d(raw_days) * RAW_BYTES_PER_CHECK / gb,
                       per_day * (_d(retention_days) - _d(raw_days)) * PACKED_BYTES_PER_CHECK
                       / gb)

