"""Builders for a moto EC2 world shaped like the Pulumi stack's database host."""

from __future__ import annotations

from lighthouse_ops.aws import ec2 as facts

REGION = "us-east-1"
STACK = "test"


_IMAGES: dict[str, str] = {}


def arm64_image(ec2) -> str:
    """An arm64 AMI id; moto's catalogue is fixed, and listing it is slow, so cache it."""
    if "arm64" not in _IMAGES:
        images = ec2.describe_images(Filters=[{"Name": "architecture", "Values": ["arm64"]}])
        _IMAGES["arm64"] = images["Images"][0]["ImageId"]
    return _IMAGES["arm64"]


def launch_db_host(ec2, *, az: str = "us-east-1a", itype: str = "t4g.micro", spot: bool = False,
                   size: int = 20, stack: str = STACK) -> tuple[str, str]:
    """A tagged arm64 database instance with a tagged data volume at /dev/sdf."""
    tags = [{"Key": facts.ROLE_TAG, "Value": facts.DB_ROLE},
            {"Key": facts.STACK_TAG, "Value": stack}, {"Key": "Name", "Value": "lighthouse-db"}]
    kwargs = {"InstanceMarketOptions": {"MarketType": "spot"}} if spot else {}
    inst = ec2.run_instances(ImageId=arm64_image(ec2), MinCount=1, MaxCount=1,
                             InstanceType=itype, Placement={"AvailabilityZone": az},
                             TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
                             **kwargs)["Instances"][0]
    vol = ec2.create_volume(AvailabilityZone=az, Size=size, VolumeType="gp3", TagSpecifications=[
        {"ResourceType": "volume", "Tags": [
            {"Key": facts.ROLE_TAG, "Value": facts.DATA_ROLE},
            {"Key": facts.STACK_TAG, "Value": stack},
            {"Key": "Name", "Value": "lighthouse-db-data"}]}])
    ec2.attach_volume(VolumeId=vol["VolumeId"], InstanceId=inst["InstanceId"],
                      Device=facts.DATA_DEVICE)
    return inst["InstanceId"], vol["VolumeId"]
