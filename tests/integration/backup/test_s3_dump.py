"""Dump upload/download with checksums against moto's S3 behind the TLS front."""

from __future__ import annotations

import boto3
import psycopg
import pytest
from lighthouse_ops.backup import dump as d
from lighthouse_ops.backup import s3
from lighthouse_ops.moto_s3 import ACCESS_KEY, REGION, SECRET_KEY, MotoS3


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    with MotoS3.start(tmp_path_factory.mktemp("moto"), buckets=["lh-dumps"]) as server:
        yield server


def test_tls_front_serves_s3_with_our_ca(moto, tmp_path):
    client = boto3.client("s3", endpoint_url=moto.endpoint, verify=str(moto.ca_file),
                          region_name=REGION, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY)
    body = b"x" * 300_000  # large enough to need a clean TLS close on PUT
    client.put_object(Bucket="lh-dumps", Key="probe", Body=body)
    assert client.get_object(Bucket="lh-dumps", Key="probe")["Body"].read() == body


def test_upload_download_roundtrip_and_tamper_detection(moto, pg15_db, tmp_path):
    with psycopg.connect(pg15_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 100) g")
    out = tmp_path / "a.dump"
    d.dump(pg15_db, out)
    client = moto.client()
    urls = s3.upload(out, "s3://lh-dumps/daily/", client)
    assert urls == ["s3://lh-dumps/daily/a.dump", "s3://lh-dumps/daily/a.dump.manifest.json"]
    head = client.head_object(Bucket="lh-dumps", Key="daily/a.dump")
    assert head["Metadata"]["sha256"] == d.sha256_file(out)
    assert head["ServerSideEncryption"] == "AES256"  # the dump holds every secret in the db
    got = s3.download(urls[0], tmp_path / "dl", client)
    assert d.check_file(got) is not None
    for path in (out, d.manifest_path(out), got, d.manifest_path(got)):
        assert path.stat().st_mode & 0o777 == 0o600, path
    # Someone overwrites the object but not its checksum metadata.
    client.put_object(Bucket="lh-dumps", Key="daily/a.dump", Body=b"garbage",
                      Metadata={"sha256": head["Metadata"]["sha256"]})
    with pytest.raises(d.CorruptBackup):
        s3.download(urls[0], tmp_path / "dl2", client)


def test_a_large_dump_goes_up_in_parts_with_checksums(moto, tmp_path, monkeypatch):
    """Past the multipart threshold (lowered here to 5 MiB, S3's minimum part): no single PUT,
    so no 5 GiB cap; the round trip still matches."""
    from boto3.s3.transfer import TransferConfig

    monkeypatch.setattr(s3, "TRANSFER", TransferConfig(multipart_threshold=5 * 1024 * 1024,
                                                       multipart_chunksize=5 * 1024 * 1024))
    big = tmp_path / "big.dump"
    big.write_bytes(bytes(range(256)) * (12 * 1024 * 1024 // 256))  # 12 MiB: 3 parts
    client = moto.client()
    (url,) = s3.upload(big, "s3://lh-dumps/big/", client)
    head = client.head_object(Bucket="lh-dumps", Key="big/big.dump")
    assert head["ContentLength"] == big.stat().st_size and "-3" in head["ETag"]
    got = s3.download(url, tmp_path / "dl", client)
    assert d.sha256_file(got) == d.sha256_file(big)


def test_bad_url_is_refused():
    with pytest.raises(ValueError, match="not an S3 URL"):
        s3.S3Url.parse("https://bucket/x")
