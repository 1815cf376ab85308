"""Dump files to and from S3 with SHA-256 checksums (S3 validates on upload; we re-check after)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from boto3.s3.transfer import TransferConfig

from lighthouse_ops.backup.dump import CorruptBackup, manifest_path, sha256_file, write_private


@dataclass(frozen=True)
class S3Url:
    bucket: str
    key: str

    @classmethod
    def parse(cls, url: str) -> S3Url:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"not an S3 URL (s3://bucket/prefix/): {url!r}")
        return cls(parsed.netloc, parsed.path.lstrip("/"))

    def join(self, name: str) -> S3Url:
        if not self.key or self.key.endswith("/"):
            return S3Url(self.bucket, self.key + name)
        return self

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


# boto3's managed transfer: multipart above 64 MiB (no 5 GiB single-PUT cap), each part's
# SHA-256 checked by S3 on receipt; the whole file's SHA-256 rides along as metadata and is
# checked by `download`. Encrypted at rest (SSE-S3) whatever the bucket's default.
TRANSFER = TransferConfig(multipart_threshold=64 * 1024 * 1024,
                          multipart_chunksize=64 * 1024 * 1024)
PRIVATE = {"ServerSideEncryption": "AES256"}


def upload(dump_file: Path, url: str, client) -> list[str]:
    """Uploads the dump and its manifest; returns their URLs."""
    dump_file = Path(dump_file)
    dest = S3Url.parse(url).join(dump_file.name)
    digest = sha256_file(dump_file)
    with dump_file.open("rb") as body:
        client.upload_fileobj(body, dest.bucket, dest.key, Config=TRANSFER, ExtraArgs={
            "ChecksumAlgorithm": "SHA256", "Metadata": {"sha256": digest}, **PRIVATE})
    head = client.head_object(Bucket=dest.bucket, Key=dest.key)
    if head["ContentLength"] != dump_file.stat().st_size:
        raise CorruptBackup(f"{dest}: stored {head['ContentLength']} bytes, "
                            f"expected {dump_file.stat().st_size}")
    urls = [str(dest)]
    mpath = manifest_path(dump_file)
    if mpath.exists():
        mdest = S3Url(dest.bucket, dest.key + mpath.name[len(dump_file.name):])
        client.put_object(Bucket=mdest.bucket, Key=mdest.key, Body=mpath.read_bytes(),
                          **PRIVATE)
        urls.append(str(mdest))
    return urls


def download(url: str, dest_dir: Path, client) -> Path:
    """Downloads a dump (and its manifest, if stored) and checks the SHA-256 recorded at upload."""
    src = S3Url.parse(url)
    dest_dir.mkdir(parents=True, exist_ok=True)
    local = dest_dir / Path(src.key).name
    obj = client.get_object(Bucket=src.bucket, Key=src.key)
    h = hashlib.sha256()
    write_private(local)
    with local.open("wb") as f:
        for chunk in obj["Body"].iter_chunks(1 << 20):
            h.update(chunk)
            f.write(chunk)
    expected = obj.get("Metadata", {}).get("sha256")
    if expected and h.hexdigest() != expected:
        raise CorruptBackup(f"{url}: SHA-256 {h.hexdigest()} != uploaded {expected}")
    try:
        m = client.get_object(Bucket=src.bucket, Key=src.key + ".manifest.json")
        write_private(manifest_path(local), m["Body"].read())
    except client.exceptions.NoSuchKey:
        pass
    return local
