"""Database host: instance, data volume, attachment, IAM, AMI lookup, for both stacks."""

import json

import pytest

INSTANCE = "aws:ec2/instance:Instance"
VOLUME = "aws:ebs/volume:Volume"


def test_instance_type_and_data_volume_size_follow_config(run):
    db, vol = run.cfg.database, run.cfg.database.data_volume
    expected = {"dev": ("t4g.micro", 20), "prod": ("t4g.small", 100)}[run.cfg.stack]
    instance = run.one(INSTANCE, "db")
    data = run.one(VOLUME, "data")
    assert (instance.inputs["instanceType"], data.inputs["size"]) == expected
    assert (db.instance_type, vol.size_gb) == expected
    assert data.inputs["type"] == "gp3"
    assert data.inputs["iops"] == vol.iops == 3000
    assert data.inputs["throughput"] == vol.throughput_mibps == 125


def test_instance_and_data_volume_share_the_availability_zone(run):
    instance = run.one(INSTANCE, "db")
    data = run.one(VOLUME, "data")
    subnet = run.by_id("aws:ec2/subnet:Subnet", instance.inputs["subnetId"])
    assert instance.inputs["availabilityZone"] == data.inputs["availabilityZone"] == "us-east-1a"
    assert subnet.inputs["availabilityZone"] == "us-east-1a"
    assert run.outputs["availability_zone"] == "us-east-1a"


def test_data_volume_attached_at_fixed_device(run):
    att = run.one("aws:ec2/volumeAttachment:VolumeAttachment", "data")
    assert att.inputs["deviceName"] == "/dev/sdf"
    assert att.inputs["volumeId"] == run.one(VOLUME, "data").id == run.outputs["data_volume_id"]
    assert att.inputs["instanceId"] == run.one(INSTANCE, "db").id == run.outputs["db_instance_id"]
    assert att.inputs["stopInstanceBeforeDetaching"] is True


def test_every_disk_is_encrypted_and_root_is_gp3(run):
    for inst in run.of_type(INSTANCE):
        root = {k: v for k, v in inst.inputs["rootBlockDevice"].items() if k != "tags"}
        assert root == {"volumeType": "gp3", "volumeSize": 8, "encrypted": True,
                        "deleteOnTermination": True}
        assert "ebsBlockDevices" not in inst.inputs
    assert [v.inputs["encrypted"] for v in run.of_type(VOLUME)] == [
        True] * run.cfg.database.member_count


def test_every_instance_requires_imdsv2(run):
    for inst in run.of_type(INSTANCE):
        meta = inst.inputs["metadataOptions"]
        assert meta["httpTokens"] == "required"
        assert meta["httpPutResponseHopLimit"] == 1
        assert meta["httpEndpoint"] == "enabled"


def test_dev_is_a_persistent_spot_request_that_stops_on_interruption(dev):
    market = dev.one(INSTANCE, "db").inputs["instanceMarketOptions"]
    assert market == {"marketType": "spot", "spotOptions": {
        "spotInstanceType": "persistent", "instanceInterruptionBehavior": "stop"}}


def test_prod_is_on_demand(prod):
    assert "instanceMarketOptions" not in prod.one(INSTANCE, "db").inputs


def test_prod_protects_data_and_dev_does_not(run):
    protected = run.cfg.stack == "prod"
    data = run.one(VOLUME, "data")
    assert (data.protect, data.retain_on_delete) == (protected, protected)
    assert data.inputs["finalSnapshot"] is protected
    instance = run.one(INSTANCE, "db")
    assert instance.inputs["disableApiTermination"] is protected
    for typ in ("aws:s3/bucket:Bucket", "aws:backup/vault:Vault",
                "aws:secretsmanager/secret:Secret"):
        rec = run.one(typ)
        assert (rec.protect, rec.retain_on_delete) == (protected, protected), typ


def test_ami_is_an_arm64_debian_12_lookup(run):
    calls = [a for fn, a in run.calls if fn == "aws:ec2/getAmi:getAmi"]
    assert calls, "no AMI lookup"
    for args in calls:
        assert args["owners"] == ["136693071363"]
        assert args["mostRecent"] is True
        filters = {f["name"]: f["values"] for f in args["filters"]}
        assert filters["architecture"] == ["arm64"]
        assert filters["name"] == ["debian-12-arm64-*"]
    from tests.unit.infra.mocks import AMI_ID  # imports pulumi_aws: keep it out of collection

    assert {i.inputs["ami"] for i in run.of_type(INSTANCE)} == {AMI_ID}


def test_cloud_init_only_prepares_for_ansible(run):
    user_data = run.one(INSTANCE, "db").inputs["userData"]
    assert user_data.startswith("#cloud-config\n")
    doc = json.loads(user_data.split("\n", 1)[1])
    assert doc["hostname"] == f"lighthouse-{run.cfg.stack}-db"
    assert "python3" in doc["packages"]
    text = json.dumps(doc)
    for forbidden in ("postgresql", "mkfs", "mount", "docker", "timescale"):
        assert forbidden not in text


def _policy_of(run, profile_name):
    profile = run.one("aws:iam/instanceProfile:InstanceProfile", profile_name)
    role = run.by_id("aws:iam/role:Role", profile.inputs["role"])
    inline = [p for p in run.of_type("aws:iam/rolePolicy:RolePolicy")
              if p.inputs["role"] == role.id]
    managed = {a.inputs["policyArn"] for a in run.of_type(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment") if a.inputs["role"] == role.id}
    assert len(inline) == 1
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    return json.loads(inline[0].inputs["policy"])["Statement"], managed


def test_db_role_is_scoped_to_the_backup_bucket_and_own_secret(run):
    statements, managed = _policy_of(run, "db")
    bucket_arn = run.one("aws:s3/bucket:Bucket").state["arn"]
    secret_arn = run.one("aws:secretsmanager/secret:Secret").state["arn"]
    assert managed == {"arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
                       "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"}
    (sms,) = [s for s in statements if "NotResource" in s]
    assert sms == {"Sid": "SendSmsAlerts", "Effect": "Allow", "Action": "sns:Publish",
                   "NotResource": "arn:aws:sns:*:*:*"}  # phone numbers only, no topic
    by_resource = {s["Resource"]: sorted(s["Action"]) for s in statements if "Resource" in s}
    assert by_resource == {
        bucket_arn: ["s3:GetBucketLocation", "s3:ListBucket"],
        f"{bucket_arn}/*": ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject",
                            "s3:PutObject"],
        secret_arn: ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
    }
    assert bucket_arn.startswith(f"arn:aws:s3:::lighthouse-{run.cfg.stack}-backups-")
    assert all(s["Effect"] == "Allow" and "*" not in s["Resource"].split(":")[-1][:1]
               for s in statements if s is not sms)


def test_prober_role_reads_only_the_secret_and_sends_sms(prod):
    statements, managed = _policy_of(prod, "prober")
    secret_arn = prod.one("aws:secretsmanager/secret:Secret").state["arn"]
    assert [s.get("Resource") for s in statements] == [secret_arn, None]
    assert statements[1]["Sid"] == "SendSmsAlerts" and statements[1]["NotResource"]
    assert len(managed) == 2


@pytest.mark.parametrize("stack,count", [("dev", 0), ("prod", 1)])
def test_prober_fleet_size_follows_architecture(stacks, stack, count):
    run = stacks[stack]
    probers = [i for i in run.of_type(INSTANCE) if i.inputs["tags"]["role"] == "prober"]
    assert len(probers) == count == run.cfg.probers.instance_count
    for p in probers:
        assert p.inputs["instanceType"] == "t4g.micro"
        assert p.inputs["availabilityZone"] == run.one(INSTANCE, "db").inputs["availabilityZone"]
    assert run.outputs["prober_instance_ids"] == [p.id for p in probers]


def test_root_volumes_are_tagged_without_instance_volume_tags(run):
    """volume_tags would also tag the attached data volume and fight its own tags (the ones
    AWS Backup selects by) on every update; the root volume is tagged on its own."""
    for inst in run.of_type("aws:ec2/instance:Instance"):
        assert not inst.inputs.get("volumeTags"), inst.name
        assert inst.inputs["rootBlockDevice"]["tags"]["Name"].endswith("-root")
    data = run.one("aws:ebs/volume:Volume", "data")
    assert data.inputs["tags"]["role"] == "db-data"
