"""Pulumi mocks that record every resource registration (inputs and options) and invoke.

Style of Pulumi's unit-testing guide (`pulumi.runtime.set_mocks` + `@pulumi.runtime.test`),
plus a MockMonitor subclass because `Mocks.new_resource` never sees resource options
(protect, retainOnDelete, parent, property dependencies) and the tests assert on them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

from infra.config import StackConfig
from infra.stack import build

ACCOUNT = "123456789012"
AMI_ID = "ami-0abc1234def567890"


@dataclass
class Recorded:
    typ: str
    name: str
    urn: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    id: str
    custom: bool
    protect: bool = False
    retain_on_delete: bool = False
    parent: str = ""
    dependencies: dict[str, list[str]] = field(default_factory=dict)
    additional_secret_outputs: list[str] = field(default_factory=list)
    secret_inputs: set[str] = field(default_factory=set)
    provider: str = ""  # "<provider urn>::<id>" when one is given explicitly


class LighthouseMocks(pulumi.runtime.Mocks):
    def __init__(self, region: str) -> None:
        self.region = region
        self.calls: list[tuple[str, dict]] = []
        self.counter = 0
        self.subnets: dict[str, str] = {}  # id -> CIDR

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{ACCOUNT}:{resource}"

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.counter += 1
        n, typ, inputs = self.counter, args.typ, dict(args.inputs)
        state = dict(inputs)
        rid = f"{args.name}-{n:04d}"
        if typ == "aws:ec2/instance:Instance":
            rid = f"i-{n:017x}"
            # an address in its subnet (a given subnet outside the stack: 10.40.0.0/24)
            subnet = self.subnets.get(inputs.get("subnetId", ""), "10.40.0.0/24")
            state["privateIp"] = f"{subnet.rsplit('.', 1)[0]}.{10 + n % 200}"
            state["primaryNetworkInterfaceId"] = f"eni-{n:017x}"
            state["arn"] = self._arn("ec2", f"instance/{rid}")
        elif typ == "aws:ebs/volume:Volume":
            rid = f"vol-{n:017x}"
            state["arn"] = self._arn("ec2", f"volume/{rid}")
        elif typ == "aws:s3/bucket:Bucket":
            name = inputs.get("bucket") or f"{inputs.get('bucketPrefix', 'bucket-')}{n:08x}"
            rid, state["bucket"], state["arn"] = name, name, f"arn:aws:s3:::{name}"
        elif typ == "aws:secretsmanager/secret:Secret":
            state["arn"] = self._arn("secretsmanager", f"secret:{inputs['name']}-AbCdEf")
            rid = state["arn"]
        elif typ == "random:index/randomPassword:RandomPassword":
            state["result"] = f"mock-{args.name}-0123456789abcdefXYZ"  # one per resource
        elif typ == "tls:index/privateKey:PrivateKey":
            state["privateKeyPem"] = f"-----BEGIN PRIVATE KEY-----\nmock-{args.name}\n" \
                                     "-----END PRIVATE KEY-----\n"
        elif typ == "tls:index/selfSignedCert:SelfSignedCert":
            state["certPem"] = f"-----BEGIN CERTIFICATE-----\nmock-{args.name}\n" \
                               "-----END CERTIFICATE-----\n"
        elif typ == "aws:rds/instance:Instance":
            rid = inputs["identifier"]
            state["address"] = f"{rid}.c0abcdefgh12.{self.region}.rds.amazonaws.com"
            state["endpoint"] = f"{state['address']}:{int(inputs.get('port', 5432))}"
            state["arn"] = self._arn("rds", f"db:{rid}")
        elif typ == "aws:backup/vault:Vault":
            rid = inputs["name"]
            state["arn"] = self._arn("backup", f"backup-vault:{rid}")
        elif typ == "aws:sns/topic:Topic":
            state["arn"] = self._arn("sns", inputs.get("name", args.name))
            rid = state["arn"]
        elif typ == "aws:iam/role:Role":
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{args.name}-{n}"
            state["name"] = f"{args.name}-{n}"
            rid = state["name"]
        elif typ == "aws:iam/instanceProfile:InstanceProfile":
            state["name"] = rid
        elif typ == "aws:ec2/vpc:Vpc":
            rid = f"vpc-{n:017x}"
        elif typ == "aws:ec2/subnet:Subnet":
            rid = f"subnet-{n:017x}"
            self.subnets[rid] = inputs["cidrBlock"]
        elif typ == "aws:ec2/securityGroup:SecurityGroup":
            rid = f"sg-{n:017x}"
        state.setdefault("arn", self._arn("mock", f"{typ}/{args.name}"))
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs):
        fn = args.token  # an invoke token such as aws:ec2/getAmi:getAmi
        self.calls.append((fn, dict(args.args)))
        if fn == "aws:ec2/getAmi:getAmi":
            return {"id": AMI_ID, "architecture": "arm64", "name": "mock-arm64-image"}
        if fn == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": [f"{self.region}a", f"{self.region}b"], "zoneIds": ["use1-az1"]}
        if fn == "aws:ec2/getSubnet:getSubnet":
            # subnet-0a/0b/0c (the cluster tests) lie in zones a/b/c, any other in c
            sid = args.args["id"]
            zone = sid[-1] if sid in ("subnet-0a", "subnet-0b", "subnet-0c") else "c"
            return {"id": sid, "availabilityZone": f"{self.region}{zone}",
                    "vpcId": "vpc-existing"}
        if fn == "aws:ec2/getVpc:getVpc":
            return {"id": args.args["id"], "cidrBlock": "172.31.0.0/16"}
        return {}


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: LighthouseMocks) -> None:
        super().__init__(mocks)
        self.records: dict[str, Recorded] = {}

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        from pulumi.runtime import rpc

        reg = self.resources[response.urn]
        inputs, _ = rpc.deserialize_properties_unwrap_secrets(request.object)
        self.records[response.urn] = Recorded(
            typ=request.type, name=request.name, urn=response.urn, inputs=inputs,
            state=dict(reg.state), id=reg.id or "", custom=request.custom,
            protect=bool(request.protect), retain_on_delete=bool(request.retainOnDelete),
            parent=request.parent,
            dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            additional_secret_outputs=list(request.additionalSecretOutputs),
            secret_inputs=_secret_keys(request.object), provider=request.provider)
        return response


def _secret_keys(struct) -> set[str]:
    """Top-level inputs sent to the engine wrapped as secrets."""
    from pulumi.runtime import rpc

    out = set()
    for key, value in struct.fields.items():
        if value.HasField("struct_value"):
            sig = value.struct_value.fields.get(rpc._special_sig_key)
            if sig is not None and sig.string_value == rpc._special_secret_sig:
                out.add(key)
    return out


@dataclass
class StackRun:
    cfg: StackConfig
    records: list[Recorded]
    calls: list[tuple[str, dict]]
    outputs: dict[str, Any]
    secret_outputs: set[str]

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.records if r.typ == typ]

    def one(self, typ: str, name: str | None = None) -> Recorded:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {typ} {name or ''}, got {[r.name for r in found]}"
        return found[0]

    def by_id(self, typ: str, rid: str) -> Recorded:
        found = [r for r in self.of_type(typ) if r.id == rid]
        assert len(found) == 1, f"expected one {typ} with id {rid}"
        return found[0]

    def by_urn(self, urn: str) -> Recorded:
        return next(r for r in self.records if r.urn == urn)

    def alarm_metrics(self) -> list[tuple[str, str, str, dict]]:
        """(alarm, namespace, metric, dimensions) of every metric an alarm reads, a
        metric-math alarm's queries included."""
        out = []
        for a in self.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
            if "namespace" in a.inputs:
                out.append((a.name, a.inputs["namespace"], a.inputs["metricName"],
                            a.inputs["dimensions"]))
            for q in a.inputs.get("metricQueries", []):
                if m := q.get("metric"):
                    out.append((a.name, m["namespace"], m["metricName"], m["dimensions"]))
        return out


def fresh_event_loop() -> None:
    """Give Pulumi's runtime a current event loop.

    set_mocks() creates asyncio futures through get_event_loop(); once any earlier test has
    called asyncio.run() (which leaves "no current loop" behind), that raises in the main
    thread, so the infra tests failed or passed depending on test order.
    """
    asyncio.set_event_loop(asyncio.new_event_loop())


def run_stack(cfg: StackConfig, mocks: LighthouseMocks | None = None) -> StackRun:
    """Build the whole program for ``cfg`` under mocks (default: LighthouseMocks for its
    region); resolve every output."""
    fresh_event_loop()
    mocks = mocks or LighthouseMocks(cfg.region)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="lighthouse", stack=cfg.stack, preview=False,
                             monitor=monitor)
    resolved: dict[str, Any] = {}
    secret: set[str] = set()

    @pulumi.runtime.test
    def program():
        outputs = build(cfg)

        async def collect() -> None:
            for key, value in outputs.items():
                out = pulumi.Output.from_input(value)
                resolved[key] = await out.future()
                if await out.is_secret():
                    secret.add(key)

        return asyncio.ensure_future(collect())

    program()
    return StackRun(cfg, list(monitor.records.values()), mocks.calls, resolved, secret)
