"""Build each committed stack once per session under Pulumi mocks (pulumi_aws imports
slowly; every test then asserts on the recorded resources), and prod as a Patroni cluster
(architecture C: prod's own file with `ha: patroni` added, as an operator turns it on)."""

from __future__ import annotations

import warnings

import pytest
import yaml

from infra.config import load_stack_file, parse_stack_config, repo_stack_file

STACKS = ("dev", "prod", "prod-ha", "prod-rds")


def prod_with(what: str, zones: list[str] | None, **sections: dict):
    """prod's own stack file with `sections` merged in and one zone per name in `zones` (None:
    prod's one zone), as an operator would turn the option on."""
    doc = yaml.safe_load(repo_stack_file("prod").read_text())["config"]
    network = {**sections.pop("network", {}), **({"availabilityZones": zones} if zones else {})}
    for name, values in {**sections, "network": network}.items():
        key = f"lighthouse:{name}"
        doc[key] = {**doc.get(key, {}), **values}
    return parse_stack_config(doc, "prod", f"Pulumi.prod.yaml (+ {what})")


def prod_ha_config():
    return prod_with("ha: patroni", ["us-east-1a", "us-east-1b", "us-east-1c"],
                     database={"ha": "patroni"})


def prod_rds_config():
    """prod with the RDS migration target on (subnets in two zones for its subnet group)."""
    return prod_with("rds", ["us-east-1a", "us-east-1b"], rds={"enabled": True})


# two more locations: one prober in eu-west-1, two in ap-southeast-2
PROBER_REGIONS = [{"region": "eu-west-1", "vpcCidr": "10.42.0.0/16"},
                  {"region": "ap-southeast-2", "count": 2, "vpcCidr": "10.43.0.0/16"}]


def prod_regions_config():
    """prod with probers in two more regions (probers.regions), peered with prod's VPC."""
    return prod_with("probers.regions", None, probers={"regions": PROBER_REGIONS})


@pytest.fixture(scope="session")
def stacks():
    # pulumi_aws warns about its own deprecated S3 classes at import time: not ours to fix.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from tests.unit.infra.mocks import run_stack

        built = {name: run_stack(load_stack_file(repo_stack_file(name)))
                 for name in ("dev", "prod")}
        built["prod-ha"] = run_stack(prod_ha_config())
        built["prod-rds"] = run_stack(prod_rds_config())
        built["prod-regions"] = run_stack(prod_regions_config())
        return built


@pytest.fixture(params=STACKS)
def run(request, stacks):
    return stacks[request.param]


@pytest.fixture
def prod_ha(stacks):
    return stacks["prod-ha"]


@pytest.fixture
def prod_rds(stacks):
    return stacks["prod-rds"]


@pytest.fixture
def dev(stacks):
    return stacks["dev"]


@pytest.fixture
def prod(stacks):
    return stacks["prod"]


@pytest.fixture
def prod_regions(stacks):
    return stacks["prod-regions"]
