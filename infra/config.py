"""Typed stack configuration for the Lighthouse Pulumi program.

One frozen dataclass per concern, parsed from a stack's ``config:`` mapping (the keys of
``Pulumi.<stack>.yaml``: ``aws:region`` and ``lighthouse:<section>`` objects). Every key is
documented in docs/pulumi.md. Bad input raises :class:`ConfigError` naming the file and the
key (``Pulumi.prod.yaml: lighthouse:database.dataVolume.sizeGb: ...``).

No Pulumi import here: the cost runbooks read stack files with :func:`load_stack_file`.
"""

from __future__ import annotations

import builtins
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

# Where the CloudWatch agent publishes host metrics (the alarms and the dashboard read it; the
# generated inventory hands it to the cloudwatch_agent role): defined with the host metrics.
from lighthouse_ops.hostmetrics import contract as hm
from lighthouse_ops.hostmetrics.contract import AGENT_NAMESPACE as AGENT_NAMESPACE
from lighthouse_ops.hostmetrics.contract import HostMetric

# Bucket layout: logical dumps under this prefix (the lifecycle rule expires it; the db
# host's weekly lighthouse-dump writes there). pgBackRest keeps its repository under pgbackrest/.
DUMPS_PREFIX = "dumps/"

NAMESPACE = "lighthouse"
SECTIONS = ("network", "database", "probers", "backup", "monitoring", "cost", "rds")
TOP_LEVEL_KEYS = ("deletionProtection", "tags", *SECTIONS)

INTERFACE_ENDPOINT_SERVICES = (
    "ssm", "ssmmessages", "ec2messages", "logs", "monitoring", "secretsmanager", "kms",
)
OS_CHOICES = ("debian-12", "ubuntu-24.04")
# what the prober's wheelhouse is built for on each image (t4g: Graviton, arm64)
OS_PYTHON = {"debian-12": "3.11", "ubuntu-24.04": "3.12"}
HOST_ARCH = "aarch64"
# gateway: AWS's managed NAT; instance: a t4g.nano doing the same for a fraction of the price
NAT_CHOICES = ("none", "gateway", "instance")
NAT_INSTANCE_TYPE = "t4g.nano"
NAT_ROOT_GB = 8
_T4G = re.compile(r"^t4g\.(nano|micro|small|medium|large|xlarge|2xlarge)$")
_AZ = r"[a-z]{2}-[a-z]+-\d[a-z]"
_REGION = r"[a-z]{2}(-gov)?-[a-z]+-\d"
_WORLD = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


class ConfigError(ValueError):
    """A stack config value is missing or invalid; the message names file and key."""


@dataclass(frozen=True)
class NetworkConfig:
    vpc_id: str | None = None
    subnet_ids: tuple[str, ...] = ()
    vpc_cidr: str = "10.40.0.0/16"
    availability_zone: str | None = None
    # Architecture C: one zone per database member (the first also holds the probers)
    availability_zones: tuple[str, ...] = ()
    public_subnet: bool = True
    # the db hosts in the private subnets, no public IPv4 (probers stay where publicSubnet says)
    private_database: bool = False
    # how private hosts reach apt mirrors and AWS APIs: a NAT in db-1's zone (a created VPC)
    nat: str = "none"
    interface_endpoints: tuple[str, ...] = ()

    @property
    def create_vpc(self) -> bool:
        return self.vpc_id is None

    @property
    def database_public(self) -> bool:
        """The db hosts get a public IPv4 (and sit in the public subnet)."""
        return self.public_subnet and not self.private_database

    @property
    def any_private(self) -> bool:
        return not self.database_public


@dataclass(frozen=True)
class DataVolumeConfig:
    size_gb: int = 20
    iops: int = 3000
    throughput_mibps: int = 125
    device_name: str = "/dev/sdf"


@dataclass(frozen=True)
class DatabaseConfig:
    instance_type: str = "t4g.micro"
    os: str = "debian-12"
    spot: bool = False
    spot_max_price: str | None = None
    root_volume_gb: int = 8
    data_volume: DataVolumeConfig = field(default_factory=DataVolumeConfig)
    allowed_cidrs: tuple[str, ...] = ()
    ssh_allowed_cidrs: tuple[str, ...] = ()
    # Architecture C: "patroni" runs `members` db hosts as one Patroni + etcd cluster
    ha: str = "none"
    members: int = 1

    @property
    def member_count(self) -> int:
        return self.members if self.ha == "patroni" else 1

    @property
    def hostnames(self) -> tuple[str, ...]:
        """Inventory names of the db hosts (db-1 first: the member that bootstraps)."""
        return tuple(f"db-{i + 1}" for i in range(self.member_count))


@dataclass(frozen=True)
class ProberRegion:
    """More probers in another region (another fleet location): their own VPC there, peered
    with the stack's, so they reach the db host's private address on 5432."""

    region: str
    count: int = 1
    vpc_cidr: str = ""

    def hostname(self, i: int) -> str:
        """Inventory (and fleet) name of the i-th prober here, 0-based."""
        return f"prober-{self.region}-{i + 1}"


@dataclass(frozen=True)
class ProberConfig:
    architecture: str = "A"  # A = co-located on the db host, B = separate instances
    count: int = 1
    instance_type: str = "t4g.micro"
    spot: bool = False
    http_port: int = 8080
    http_allowed_cidrs: tuple[str, ...] = ()
    regions: tuple[ProberRegion, ...] = ()

    @property
    def instance_count(self) -> int:
        """Separate prober instances to create in the stack's region (0 when co-located)."""
        return self.count if self.architecture == "B" else 0

    @property
    def remote_count(self) -> int:
        """Prober instances in the other regions."""
        return sum(r.count for r in self.regions)


@dataclass(frozen=True)
class BackupConfig:
    enabled: bool = True
    schedule: str = "cron(0 2 * * ? *)"  # daily 02:00 UTC
    daily_retention_days: int = 30
    weekly: bool = False
    weekly_schedule: str = "cron(0 3 ? * SUN *)"
    weekly_retention_days: int = 90
    copy_to_vault_arn: str | None = None
    dump_expiration_days: int = 365
    noncurrent_version_expiration_days: int = 30


@dataclass(frozen=True)
class MonitoringConfig:
    alarms: bool = True
    alarm_email: str | None = None
    dashboard: bool = True
    cpu_threshold_percent: float = 80.0
    cpu_evaluation_periods: int = 3  # of 5 minutes: "sustained" = 15 min
    disk_used_threshold_percent: float = 85.0
    memory_used_threshold_percent: float = 90.0
    connections_used_threshold_percent: float = 80.0
    log_retention_days: int = 30
    data_mount_path: str = "/data"
    data_fs_type: str = "ext4"


@dataclass(frozen=True)
class RdsConfig:
    """RDS for PostgreSQL (seed option C2): a Multi-AZ instance beside the db host, the target
    `invoke db.migrate-to` moves a live database to (vanilla PostgreSQL: no TimescaleDB)."""

    enabled: bool = False
    instance_class: str = "db.t4g.small"
    engine_version: str = "17"
    allocated_storage_gb: int = 20
    max_allocated_storage_gb: int = 100  # storage autoscaling ceiling
    multi_az: bool = True
    backup_retention_days: int = 7
    backup_window: str = "03:00-04:00"
    maintenance_window: str = "sun:04:30-sun:05:30"


@dataclass(frozen=True)
class CostAssumptions:
    """Usage figures the price list cannot know (see infra/cost.py)."""

    snapshot_fraction: float = 0.10  # incremental snapshot GB as a share of the data volume
    egress_gb_per_month: float = 1.0
    logs_usd_per_month: float = 0.0
    bucket_gb: float = 0.0
    # what the private hosts send and fetch through a NAT gateway (apt, agent, SSM), per month
    nat_gb_per_month: float = 5.0
    # per prober in another region: its check results to the database, and the replies
    # (500 monitors at 60 s: ~22 M rows a month, ~3 GB on the wire)
    inter_region_gb_per_prober: float = 3.0


@dataclass(frozen=True)
class StackConfig:
    stack: str
    region: str
    deletion_protection: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    probers: ProberConfig = field(default_factory=ProberConfig)
    backup: BackupConfig = field(default_factory=BackupConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    cost: CostAssumptions = field(default_factory=CostAssumptions)
    rds: RdsConfig = field(default_factory=RdsConfig)

    @property
    def zone_count(self) -> int:
        """Zones the created VPC spans: one per db member; RDS needs subnets in two."""
        return max(self.database.member_count, 2 if self.rds.enabled else 1)

    @property
    def name_prefix(self) -> str:
        return f"lighthouse-{self.stack}"

    @property
    def backup_tag(self) -> tuple[str, str]:
        """Tag (key, value) that AWS Backup selects resources by."""
        return ("lighthouse:backup", self.name_prefix)

    @property
    def public_ip_count(self) -> int:
        """Public IPv4 addresses (each billed): hosts in the public subnet, and the NAT's."""
        net = self.network
        return (self.database.member_count * net.database_public
                + self.probers.instance_count * net.public_subnet
                + self.probers.remote_count  # always in their region's public subnet
                + (net.nat != "none"))

    @property
    def archiving(self) -> bool:
        """WAL goes to S3 (pgBackRest): single db host only; a Patroni cluster has no
        pgBackRest yet (playbooks/db.yml refuses the pair), so the inventory turns it off."""
        return self.database.ha == "none"

    @property
    def alarms(self) -> tuple[AlarmRef, ...]:
        """The CloudWatch alarms the stack creates, each with the host it watches."""
        if not self.monitoring.alarms:
            return ()
        out: list[AlarmRef] = []
        hosts = self.database.hostnames
        for host in hosts:
            # one db host keeps the names it always had; members are named by host
            prefix = "db" if len(hosts) == 1 else host
            out += [AlarmRef(f"{prefix}-{kind}", kind, host)
                    for kind in ("cpu", "status", "disk", "memory")]
            for kind in HOST_METRIC_ALARMS:
                if kind in ARCHIVE_ALARMS and not self.archiving:
                    continue  # nothing archives: no RPO to watch
                if kind == "prober-heartbeat" and len(hosts) > 1:
                    continue  # one alarm over every member (below)
                name = kind if len(hosts) == 1 else f"{host}-{kind.removeprefix('db-')}"
                out.append(AlarmRef(name, kind, host))
        if len(hosts) > 1:
            out.append(AlarmRef("prober-heartbeat", "prober-heartbeat", None))
        if self.backup.enabled:
            out.append(AlarmRef("backup-failed", "backup-failed", None))
        out += [AlarmRef(f"prober-{i + 1}-status", "status", f"prober-{i + 1}")
                for i in range(self.probers.instance_count)]
        return tuple(out)

    @property
    def alarm_names(self) -> tuple[str, ...]:
        """Logical names of the CloudWatch alarms the stack creates (cost model counts them)."""
        return tuple(a.name for a in self.alarms)

    @property
    def log_group_name(self) -> str:
        """The hosts' log group (PostgreSQL, pgBackRest): the stack creates it, the agent
        ships into it (the inventory hands the name to the cloudwatch_agent role)."""
        return f"/lighthouse/{self.stack}/hosts"

    @property
    def custom_metric_count(self) -> int:
        """Metrics the hosts publish (billed per metric-month, alarms or not): the agent's
        disk used_percent + inodes_free per mount, mem x2 and swap (db host: / and the data
        mount; each separate prober: /) and lighthouse-host-metrics on the db host.
        test_aws_contract.py counts them in the rendered agent config."""
        def agent(mounts: int) -> int:
            return 2 * mounts + 3
        host_metrics = len(hm.ALL) - (0 if self.archiving else len(hm.ARCHIVE_METRICS))
        # probers in other regions publish into the stack's region too (agent config region)
        return (self.database.member_count * (agent(2) + host_metrics)
                + (self.probers.instance_count + self.probers.remote_count) * agent(1))


@dataclass(frozen=True)
class AlarmRef:
    """One alarm: its logical name (the alarm is ``lighthouse-<stack>-<name>``), what it
    measures (cpu, status, disk, memory, a HOST_METRIC_ALARMS key, backup-failed) and the
    inventory host whose metrics it reads (None: the vault, or every db member at once)."""

    name: str
    kind: str
    host: str | None


# What CloudWatch Logs accepts as a log group's retention.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)


# Alarms on the db host's lighthouse-host-metrics (published every minute; 5-minute periods):
# name -> (metric, statistic, periods, threshold, comparison, treat_missing_data). A threshold
# of None is the stack's connectionsUsedThresholdPercent. Missing data breaches only for the
# heartbeat: no checks stored and no metrics at all (host, emitter or PostgreSQL down) are both
# an outage; archiving off publishes no archive metrics, which is fine.
HOST_METRIC_ALARMS: dict[str, tuple[HostMetric, str, int, float | None, str, str]] = {
    "db-connections": (hm.CONNECTIONS_USED, "Maximum", 2, None, "GreaterThanThreshold",
                       "missing"),
    # 2 x archive_timeout (60 s) at every sample, twice in a row: no WAL in S3 for 10 minutes
    "wal-archive-lag": (hm.ARCHIVE_AGE, "Minimum", 2, 120, "GreaterThanThreshold",
                        "notBreaching"),
    "wal-archive-failing": (hm.ARCHIVE_FAILING, "Minimum", 2, 0, "GreaterThanThreshold",
                            "notBreaching"),
    "units-failed": (hm.UNITS_FAILED, "Maximum", 1, 0, "GreaterThanThreshold", "missing"),
    "prober-heartbeat": (hm.RECENT_CHECKS, "Maximum", 2, 1, "LessThanThreshold", "breaching"),
}
ARCHIVE_ALARMS = ("wal-archive-lag", "wal-archive-failing")
HA_CHOICES = ("none", "patroni")


# --- parsing -------------------------------------------------------------------------------


class _Reader:
    """Reads one config object, remembering the file and key path for error messages."""

    def __init__(self, data: Any, source: str, path: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: {path}: expected a mapping, got {type(data).__name__}")
        self.data, self.source, self.path = data, source, path
        self.used: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}"

    def fail(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self._key(key)}: {why}")

    def raw(self, key: str, default: Any) -> Any:
        self.used.add(key)
        value = self.data.get(key, default)
        return default if value is None else value

    def bool(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value

    def int(self, key: str, default: int, lo: int, hi: int) -> int:
        value = self.raw(key, default)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.fail(key, f"expected an integer in [{lo}, {hi}], got {value!r}")
        return value

    def choice_int(self, key: builtins.str, default: builtins.int,
                   choices: tuple[builtins.int, ...]) -> builtins.int:
        value = self.int(key, default, min(choices), max(choices))
        if value not in choices:
            raise self.fail(key, f"expected one of {', '.join(map(str, choices))}, got {value}")
        return value

    def float(self, key: str, default: float, lo: float, hi: float) -> float:
        value = self.raw(key, default)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise self.fail(key, f"expected a number in [{lo}, {hi}], got {value!r}") from None
        if isinstance(value, bool) or not lo <= number <= hi:
            raise self.fail(key, f"expected a number in [{lo}, {hi}], got {value!r}")
        return number

    def str(self, key: str, default: str | None, pattern: str | None = None,
            choices: tuple[str, ...] | None = None) -> str | None:
        value = self.raw(key, default)
        if value is None or value == "":
            return default if default != "" else None
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(key, f"expected one of {', '.join(choices)}, got {value!r}")
        if pattern is not None and not re.fullmatch(pattern, value):
            raise self.fail(key, f"{value!r} does not match {pattern}")
        return value

    def str_list(self, key: builtins.str, item_pattern: builtins.str | None = None,
                 choices: tuple[builtins.str, ...] | None = None) -> tuple[builtins.str, ...]:
        value = self.raw(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"expected a list of strings, got {value!r}")
        for item in value:
            if choices is not None and item not in choices:
                raise self.fail(key, f"{item!r} is not one of {', '.join(choices)}")
            if item_pattern is not None and not re.fullmatch(item_pattern, item):
                raise self.fail(key, f"{item!r} does not match {item_pattern}")
        return tuple(value)

    def cidrs(self, key: builtins.str) -> tuple[builtins.str, ...]:
        """CIDRs for an ingress rule; the whole internet is refused outright."""
        out = []
        for item in self.str_list(key):
            try:
                net = ipaddress.ip_network(item, strict=True)
            except ValueError as exc:
                raise self.fail(key, f"{item!r} is not a CIDR ({exc})") from None
            if net in _WORLD:
                raise self.fail(key, f"{item} would open the port to the whole internet")
            out.append(str(net))
        return tuple(out)

    def section(self, key: builtins.str) -> _Reader:
        self.used.add(key)
        return _Reader(self.data.get(key), self.source, self._key(key))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(f"{self.source}: {self.path}: unknown key(s) {', '.join(unknown)}")


def _network(r: _Reader) -> NetworkConfig:
    cfg = NetworkConfig(
        vpc_id=r.str("vpcId", None, pattern=r"vpc-[0-9a-f]+"),
        subnet_ids=r.str_list("subnetIds", item_pattern=r"subnet-[0-9a-f]+"),
        vpc_cidr=r.str("vpcCidr", "10.40.0.0/16", pattern=r"\d+\.\d+\.0\.0/16") or "",
        availability_zone=r.str("availabilityZone", None, pattern=_AZ),
        availability_zones=r.str_list("availabilityZones", item_pattern=_AZ),
        public_subnet=r.bool("publicSubnet", True),
        private_database=r.bool("privateDatabase", False),
        nat=r.str("nat", "none", choices=NAT_CHOICES) or "none",
        interface_endpoints=r.str_list("interfaceEndpoints", choices=INTERFACE_ENDPOINT_SERVICES),
    )
    r.done()
    if cfg.vpc_id and not cfg.subnet_ids:
        raise r.fail("subnetIds", "required when vpcId is set (the first hosts the database)")
    if cfg.subnet_ids and not cfg.vpc_id:
        raise r.fail("vpcId", "required when subnetIds is set")
    if cfg.availability_zones and cfg.availability_zone not in (None,
                                                                cfg.availability_zones[0]):
        raise r.fail("availabilityZone", f"{cfg.availability_zone} is not the first of "
                     "availabilityZones (db-1's zone, which also holds the probers)")
    if len(set(cfg.availability_zones)) != len(cfg.availability_zones):
        raise r.fail("availabilityZones", "each zone at most once (one member per zone)")
    if not cfg.create_vpc and cfg.nat != "none":
        raise r.fail("nat", "only for a VPC the stack creates (an existing VPC's routes are "
                     "its owner's)")
    if cfg.create_vpc and cfg.any_private and cfg.nat == "none":
        raise r.fail("nat", "gateway or instance: hosts in the private subnet (privateDatabase "
                     "or publicSubnet: false) reach Debian's mirrors only through a NAT "
                     "(interface endpoints serve AWS APIs, not apt)")
    if cfg.create_vpc and cfg.nat != "none" and not cfg.any_private:
        raise r.fail("nat", "nothing is private (privateDatabase: false, publicSubnet: true): "
                     "a NAT would cost money for no host")
    return cfg


def _database(r: _Reader) -> DatabaseConfig:
    vol = r.section("dataVolume")
    data_volume = DataVolumeConfig(
        size_gb=vol.int("sizeGb", 20, 1, 16384),
        iops=vol.int("iops", 3000, 3000, 16000),
        throughput_mibps=vol.int("throughputMibps", 125, 125, 1000),
        device_name=vol.str("deviceName", "/dev/sdf", pattern=r"/dev/sd[f-p]") or "/dev/sdf",
    )
    vol.done()
    # gp3 allows at most 0.25 MiB/s of throughput per provisioned IOPS.
    if data_volume.throughput_mibps > data_volume.iops / 4:
        raise vol.fail("throughputMibps", f"gp3 allows at most iops/4 = {data_volume.iops // 4}")
    cfg = DatabaseConfig(
        instance_type=r.str("instanceType", "t4g.micro", pattern=_T4G.pattern) or "t4g.micro",
        os=r.str("os", "debian-12", choices=OS_CHOICES) or "debian-12",
        spot=r.bool("spot", False),
        spot_max_price=r.str("spotMaxPrice", None, pattern=r"\d+(\.\d+)?"),
        root_volume_gb=r.int("rootVolumeGb", 8, 8, 100),
        data_volume=data_volume,
        allowed_cidrs=r.cidrs("allowedCidrs"),
        ssh_allowed_cidrs=r.cidrs("sshAllowedCidrs"),
        ha=r.str("ha", "none", choices=HA_CHOICES) or "none",
        members=r.choice_int("members", 3, (3, 5)),
    )
    r.done()
    if cfg.ha == "none" and "members" in r.data:
        raise r.fail("members", "only with ha: patroni (one db host otherwise)")
    if cfg.ha == "none":
        cfg = replace(cfg, members=1)
    return cfg


def _probers(r: _Reader) -> ProberConfig:
    cfg = ProberConfig(
        architecture=r.str("architecture", "A", choices=("A", "B")) or "A",
        count=r.int("count", 1, 0, 20),
        instance_type=r.str("instanceType", "t4g.micro", pattern=_T4G.pattern) or "t4g.micro",
        spot=r.bool("spot", False),
        http_port=r.int("httpPort", 8080, 1024, 65535),
        http_allowed_cidrs=r.cidrs("httpAllowedCidrs"),
        regions=_prober_regions(r),
    )
    r.done()
    if cfg.architecture == "B" and cfg.count < 1:
        raise r.fail("count", "architecture B needs at least one prober instance")
    if cfg.regions and cfg.architecture != "B":
        raise r.fail("regions", "probers in other regions need architecture B")
    return cfg


def _prober_regions(r: _Reader) -> tuple[ProberRegion, ...]:
    raw = r.raw("regions", [])
    if not isinstance(raw, list):
        raise r.fail("regions", f"expected a list of {{region, count, vpcCidr}}, got {raw!r}")
    out = []
    for i, item in enumerate(raw):
        one = _Reader(item, r.source, f"{r.path}.regions[{i}]")
        out.append(ProberRegion(
            region=one.str("region", None, pattern=_REGION) or "",
            count=one.int("count", 1, 1, 10),
            vpc_cidr=one.str("vpcCidr", None, pattern=r"\d+\.\d+\.0\.0/16") or ""))
        one.done()
        if not out[-1].region or not out[-1].vpc_cidr:
            raise one.fail("region" if not out[-1].region else "vpcCidr",
                           "required (e.g. region: eu-west-1, vpcCidr: 10.42.0.0/16)")
    return tuple(out)


def _backup(r: _Reader) -> BackupConfig:
    cron = r"cron\(.+\)"
    cfg = BackupConfig(
        enabled=r.bool("enabled", True),
        schedule=r.str("schedule", BackupConfig.schedule, pattern=cron) or BackupConfig.schedule,
        daily_retention_days=r.int("dailyRetentionDays", 30, 1, 36500),
        weekly=r.bool("weekly", False),
        weekly_schedule=r.str("weeklySchedule", BackupConfig.weekly_schedule, pattern=cron)
        or BackupConfig.weekly_schedule,
        weekly_retention_days=r.int("weeklyRetentionDays", 90, 1, 36500),
        copy_to_vault_arn=r.str("copyToVaultArn", None, pattern=r"arn:aws[a-z-]*:backup:.+"),
        dump_expiration_days=r.int("dumpExpirationDays", 365, 1, 36500),
        noncurrent_version_expiration_days=r.int("noncurrentVersionExpirationDays", 30, 1, 3650),
    )
    r.done()
    return cfg


def _monitoring(r: _Reader) -> MonitoringConfig:
    cfg = MonitoringConfig(
        alarms=r.bool("alarms", True),
        alarm_email=r.str("alarmEmail", None, pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+"),
        dashboard=r.bool("dashboard", True),
        cpu_threshold_percent=r.float("cpuThresholdPercent", 80.0, 1, 100),
        cpu_evaluation_periods=r.int("cpuEvaluationPeriods", 3, 1, 288),
        disk_used_threshold_percent=r.float("diskUsedThresholdPercent", 85.0, 1, 100),
        memory_used_threshold_percent=r.float("memoryUsedThresholdPercent", 90.0, 1, 100),
        connections_used_threshold_percent=r.float("connectionsUsedThresholdPercent", 80.0,
                                                   1, 100),
        log_retention_days=r.choice_int("logRetentionDays", 30, LOG_RETENTION_DAYS),
        data_mount_path=r.str("dataMountPath", "/data", pattern=r"/[\w/.-]*") or "/data",
        data_fs_type=r.str("dataFsType", "ext4", choices=("ext4", "xfs")) or "ext4",
    )
    r.done()
    return cfg


def _cost(r: _Reader) -> CostAssumptions:
    cfg = CostAssumptions(
        snapshot_fraction=r.float("snapshotFraction", 0.10, 0, 10),
        egress_gb_per_month=r.float("egressGbPerMonth", 1.0, 0, 1e6),
        logs_usd_per_month=r.float("logsUsdPerMonth", 0.0, 0, 1e6),
        bucket_gb=r.float("bucketGb", 0.0, 0, 1e7),
        nat_gb_per_month=r.float("natGbPerMonth", 5.0, 0, 1e6),
        inter_region_gb_per_prober=r.float("interRegionGbPerProber", 3.0, 0, 1e6),
    )
    r.done()
    return cfg


def _rds(r: _Reader) -> RdsConfig:
    cfg = RdsConfig(
        enabled=r.bool("enabled", False),
        # the classes infra/prices.json prices (the cost model must price what it creates)
        instance_class=r.str("instanceClass", "db.t4g.small",
                             choices=("db.t4g.micro", "db.t4g.small", "db.t4g.medium"))
        or "db.t4g.small",
        engine_version=r.str("engineVersion", "17", pattern=r"1[5-8](\.\d+)?") or "17",
        allocated_storage_gb=r.int("allocatedStorageGb", 20, 20, 65536),
        max_allocated_storage_gb=r.int("maxAllocatedStorageGb", 100, 20, 65536),
        multi_az=r.bool("multiAz", True),
        backup_retention_days=r.int("backupRetentionDays", 7, 1, 35),
        backup_window=r.str("backupWindow", "03:00-04:00", pattern=r"\d\d:\d\d-\d\d:\d\d")
        or "03:00-04:00",
        maintenance_window=r.str("maintenanceWindow", "sun:04:30-sun:05:30",
                                 pattern=r"[a-z]{3}:\d\d:\d\d-[a-z]{3}:\d\d:\d\d")
        or "sun:04:30-sun:05:30",
    )
    r.done()
    if cfg.max_allocated_storage_gb < cfg.allocated_storage_gb:
        raise r.fail("maxAllocatedStorageGb", f"below allocatedStorageGb "
                     f"({cfg.allocated_storage_gb}): storage autoscaling needs room to grow")
    return cfg


def parse_stack_config(config: Mapping[str, Any], stack: str, source: str) -> StackConfig:
    """Build a :class:`StackConfig` from a stack's ``config:`` mapping (namespaced keys)."""
    ours = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith(f"{NAMESPACE}:")}
    unknown = sorted(set(ours) - set(TOP_LEVEL_KEYS))
    if unknown:
        names = ", ".join(f"{NAMESPACE}:{k}" for k in unknown)
        raise ConfigError(f"{source}: unknown key(s) {names}")
    region = config.get("aws:region")
    if not isinstance(region, str) or not re.fullmatch(_REGION, region):
        raise ConfigError(f"{source}: aws:region: required, e.g. us-east-1 (got {region!r})")
    top = _Reader(ours, source, NAMESPACE)
    deletion_protection = top.bool("deletionProtection", False)
    tags = top.raw("tags", {})
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise top.fail("tags", f"expected a mapping of strings, got {tags!r}")
    cfg = StackConfig(
        stack=stack,
        region=region,
        deletion_protection=deletion_protection,
        tags=dict(tags),
        network=_network(_Reader(ours.get("network"), source, f"{NAMESPACE}:network")),
        database=_database(_Reader(ours.get("database"), source, f"{NAMESPACE}:database")),
        probers=_probers(_Reader(ours.get("probers"), source, f"{NAMESPACE}:probers")),
        backup=_backup(_Reader(ours.get("backup"), source, f"{NAMESPACE}:backup")),
        monitoring=_monitoring(_Reader(ours.get("monitoring"), source, f"{NAMESPACE}:monitoring")),
        cost=_cost(_Reader(ours.get("cost"), source, f"{NAMESPACE}:cost")),
        rds=_rds(_Reader(ours.get("rds"), source, f"{NAMESPACE}:rds")),
    )
    _check_topology(cfg, source)
    _check_prober_regions(cfg, source)
    if cfg.deletion_protection and cfg.database.spot:
        raise ConfigError(
            f"{source}: {NAMESPACE}:database.spot: spot instances cannot have termination "
            f"protection; turn off {NAMESPACE}:deletionProtection or spot"
        )
    return cfg


def _check_topology(cfg: StackConfig, source: str) -> None:
    """Architecture C needs its probers apart from the members and one zone per member; RDS
    needs subnets in two zones."""
    db, net, zones = cfg.database, cfg.network, cfg.zone_count
    if zones == 1:
        if net.availability_zones:
            raise ConfigError(f"{source}: {NAMESPACE}:network.availabilityZones: only with "
                              f"{NAMESPACE}:database.ha: patroni or {NAMESPACE}:rds (use "
                              "availabilityZone)")
        return
    if net.create_vpc and len(net.availability_zones) != zones:
        why = f"{db.members} members" if db.ha != "none" else "an RDS subnet group"
        raise ConfigError(
            f"{source}: {NAMESPACE}:network.availabilityZones: {len(net.availability_zones)} "
            f"zone(s) for {why}: name {zones}, db-1's first (keep availabilityZone's there: "
            "its data volume cannot move zone)")
    if not net.create_vpc and len(net.subnet_ids) < zones:
        raise ConfigError(
            f"{source}: {NAMESPACE}:network.subnetIds: {zones} zones needed ("
            f"{'one per member' if db.ha != 'none' else 'RDS subnet group'}): list {zones} "
            "subnets, the first also holds the probers")
    if db.ha == "none":
        return
    if cfg.probers.architecture != "B":
        raise ConfigError(
            f"{source}: {NAMESPACE}:probers.architecture: ha: patroni needs architecture B "
            "(a prober on a member would go down with it and pin the cluster to one host)")


def _check_prober_regions(cfg: StackConfig, source: str) -> None:
    """Each other region once, not the stack's own, with a VPC range that overlaps neither
    the stack's VPC nor another region's (peered VPCs cannot overlap); the stack's VPC must be
    its own (the peering routes go into its route tables)."""
    if not cfg.probers.regions:
        return
    key = f"{source}: {NAMESPACE}:probers.regions"
    if not cfg.network.create_vpc:
        raise ConfigError(f"{key}: needs the stack's own VPC (network.vpcCidr, no vpcId): the "
                          "routes to the peered regions go into its route tables")
    seen = {cfg.region: ipaddress.ip_network(cfg.network.vpc_cidr)}
    for r in cfg.probers.regions:
        if r.region in seen:
            raise ConfigError(f"{key}: {r.region} is listed twice or is the stack's own region "
                              f"({cfg.region}, whose probers are probers.count)")
        net = ipaddress.ip_network(r.vpc_cidr)
        for other, used in seen.items():
            if net.overlaps(used):
                raise ConfigError(f"{key}: {r.region}'s vpcCidr {net} overlaps {other}'s "
                                  f"{used}: peered VPCs need distinct ranges")
        seen[r.region] = net


def load_stack_file(path: str | Path, stack: str | None = None) -> StackConfig:
    """Read ``Pulumi.<stack>.yaml`` directly (no Pulumi CLI needed)."""
    path = Path(path)
    if stack is None:
        match = re.fullmatch(r"Pulumi\.(.+)\.ya?ml", path.name)
        if not match:
            raise ConfigError(f"{path}: cannot tell the stack name from the file name")
        stack = match.group(1)
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read stack file: {exc}") from None
    config = doc.get("config") if isinstance(doc, Mapping) else None
    if not isinstance(config, Mapping):
        raise ConfigError(f"{path}: config: expected a mapping")
    return parse_stack_config(config, stack, path.name)


def repo_stack_file(stack: str) -> Path:
    """Path of the committed stack file for ``stack`` (dev, prod)."""
    return Path(__file__).resolve().parents[1] / f"Pulumi.{stack}.yaml"
