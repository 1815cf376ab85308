"""Typed stack config: the committed stacks parse; bad input names the file and key."""

import pytest

from infra.config import ConfigError, load_stack_file, parse_stack_config, repo_stack_file


def _parse(**sections):
    cfg = {"aws:region": "us-east-1"}
    cfg.update({f"lighthouse:{k}": v for k, v in sections.items()})
    return parse_stack_config(cfg, "test", "Pulumi.test.yaml")


def test_committed_stacks():
    dev = load_stack_file(repo_stack_file("dev"))
    prod = load_stack_file(repo_stack_file("prod"))
    assert (dev.database.instance_type, dev.database.spot, dev.database.data_volume.size_gb,
            dev.monitoring.dashboard, dev.deletion_protection) == ("t4g.micro", True, 20,
                                                                   False, False)
    assert (prod.database.instance_type, prod.database.spot, prod.database.data_volume.size_gb,
            prod.monitoring.alarms, prod.backup.enabled, prod.deletion_protection) == (
        "t4g.small", False, 100, True, True, True)
    # prod's db host is private behind a NAT instance, its prober public; dev all public
    assert (prod.network.database_public, prod.network.public_subnet, prod.network.nat) == (
        False, True, "instance")
    assert (dev.network.database_public, dev.network.nat) == (True, "none")


def test_defaults_are_safe():
    cfg = _parse()
    assert cfg.database.allowed_cidrs == () and cfg.database.ssh_allowed_cidrs == ()
    assert cfg.backup.schedule == "cron(0 2 * * ? *)"
    assert cfg.backup.daily_retention_days == 30 and cfg.backup.weekly_retention_days == 90


@pytest.mark.parametrize("sections,message", [
    ({"database": {"allowedCidrs": ["0.0.0.0/0"]}},
     "lighthouse:database.allowedCidrs: 0.0.0.0/0 would open the port to the whole internet"),
    ({"database": {"sshAllowedCidrs": ["::/0"]}}, "lighthouse:database.sshAllowedCidrs"),
    ({"database": {"allowedCidrs": ["10.0.0.1/8"]}}, "is not a CIDR"),
    ({"database": {"instanceType": "m5.large"}}, "lighthouse:database.instanceType"),
    ({"database": {"dataVolume": {"sizeGb": "big"}}}, "lighthouse:database.dataVolume.sizeGb"),
    ({"database": {"dataVolume": {"throughputMibps": 1000}}}, "at most iops/4 = 750"),
    ({"database": {"dataVolume": {"deviceName": "/dev/xvda"}}}, "dataVolume.deviceName"),
    ({"database": {"os": "centos"}}, "expected one of debian-12, ubuntu-24.04"),
    ({"database": {"colour": "red"}}, "lighthouse:database: unknown key(s) colour"),
    ({"probers": {"architecture": "B", "count": 0}}, "lighthouse:probers.count"),
    ({"network": {"vpcId": "vpc-0abc"}}, "lighthouse:network.subnetIds: required"),
    ({"network": {"interfaceEndpoints": ["ec2"]}}, "'ec2' is not one of"),
    ({"monitoring": {"cpuThresholdPercent": 120}}, "lighthouse:monitoring.cpuThresholdPercent"),
    ({"backup": {"schedule": "daily"}}, "lighthouse:backup.schedule"),
    ({"deletionProtection": True, "database": {"spot": True}}, "lighthouse:database.spot"),
    ({"nonsense": 1}, "unknown key(s) lighthouse:nonsense"),
    ({"network": {"privateDatabase": True}},
     "lighthouse:network.nat: gateway or instance: hosts in the private subnet"),
    ({"network": {"publicSubnet": False, "interfaceEndpoints": ["ssm"]}},
     "reach Debian's mirrors only through a NAT"),
    ({"network": {"nat": "gateway"}}, "lighthouse:network.nat: nothing is private"),
    ({"network": {"vpcId": "vpc-0abc", "subnetIds": ["subnet-0a"], "nat": "instance",
                  "privateDatabase": True}}, "only for a VPC the stack creates"),
    ({"network": {"nat": "yes"}}, "expected one of none, gateway, instance"),
])
def test_errors_name_file_and_key(sections, message):
    with pytest.raises(ConfigError) as err:
        _parse(**sections)
    assert str(err.value).startswith("Pulumi.test.yaml: ")
    assert message in str(err.value)


def test_region_is_required():
    with pytest.raises(ConfigError, match="Pulumi.x.yaml: aws:region: required"):
        parse_stack_config({}, "x", "Pulumi.x.yaml")


def test_string_booleans_and_numbers_from_pulumi_config_are_accepted():
    cfg = _parse(deletionProtection="true", database={"dataVolume": {"sizeGb": "50"}})
    assert cfg.deletion_protection is True and cfg.database.data_volume.size_gb == 50


def test_unreadable_file(tmp_path):
    bad = tmp_path / "Pulumi.x.yaml"
    bad.write_text("config: [1, 2")
    with pytest.raises(ConfigError, match="Pulumi.x.yaml: cannot read stack file"):
        load_stack_file(bad)


def test_vpc_cidr_must_be_a_16():
    with pytest.raises(ConfigError, match="lighthouse:network.vpcCidr"):
        _parse(network={"vpcCidr": "10.0.0.0/24"})
    assert _parse(network={"vpcCidr": "10.9.0.0/16"}).network.vpc_cidr == "10.9.0.0/16"


ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]
HA_B = {"probers": {"architecture": "B", "count": 1}}


def test_a_patroni_cluster_parses_with_one_zone_per_member():
    cfg = _parse(database={"ha": "patroni"}, network={"availabilityZones": ZONES}, **HA_B)
    assert (cfg.database.ha, cfg.database.member_count) == ("patroni", 3)
    assert cfg.database.hostnames == ("db-1", "db-2", "db-3")
    assert not cfg.archiving  # no pgBackRest on a cluster yet
    five = _parse(database={"ha": "patroni", "members": 5},
                  network={"availabilityZones": [*ZONES, "us-east-1d", "us-east-1f"],
                           "availabilityZone": "us-east-1a"}, **HA_B)
    assert five.database.member_count == 5
    single = _parse()
    assert (single.database.member_count, single.database.hostnames, single.archiving) == (
        1, ("db-1",), True)


@pytest.mark.parametrize("sections,message", [
    ({"database": {"ha": "patroni"}, "network": {"availabilityZones": ZONES}},
     "lighthouse:probers.architecture: ha: patroni needs architecture B"),
    ({"database": {"ha": "patroni"}, **HA_B},
     "lighthouse:network.availabilityZones: 0 zone(s) for 3 members"),
    ({"database": {"ha": "patroni"}, "network": {"availabilityZones": ZONES[:2]}, **HA_B},
     "2 zone(s) for 3 members"),
    ({"database": {"ha": "patroni", "members": 4}, **HA_B},
     "lighthouse:database.members: expected one of 3, 5"),
    ({"database": {"members": 3}}, "lighthouse:database.members: only with ha: patroni"),
    ({"database": {"ha": "raft"}}, "lighthouse:database.ha: expected one of none, patroni"),
    ({"network": {"availabilityZones": ZONES}},
     "lighthouse:network.availabilityZones: only with lighthouse:database.ha: patroni or "
     "lighthouse:rds"),
    ({"database": {"ha": "patroni"}, **HA_B,
      "network": {"availabilityZones": ZONES, "availabilityZone": "us-east-1b"}},
     "us-east-1b is not the first of availabilityZones"),
    ({"database": {"ha": "patroni"}, **HA_B,
      "network": {"availabilityZones": ["us-east-1a", "us-east-1a", "us-east-1b"]}},
     "each zone at most once"),
    ({"database": {"ha": "patroni"}, **HA_B,
      "network": {"vpcId": "vpc-0abc", "subnetIds": ["subnet-0a", "subnet-0b"]}},
     "lighthouse:network.subnetIds: 3 zones needed (one per member)"),
])
def test_bad_cluster_settings_name_the_key(sections, message):
    with pytest.raises(ConfigError) as err:
        _parse(**sections)
    assert message in str(err.value)
