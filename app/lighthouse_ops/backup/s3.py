"""Dump files to and from S3 with SHA-256 checksums (S3 validates on upload; we re-check after)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from lighthouse_ops.backup.dump import CorruptBackup, manifest_path, sha256_file


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


def _b64(hexdigest: str) -> str:
    return base64.b64encode(bytes.fromhex(hexdigest)).decode()


def upload(dump_file: Path, url: str, client) -> list[str]:
    """Uploads the dump and its manifest; returns their URLs. The dump carries its SHA-256 both
    as S3's checksum (verified by S3 on receipt) and as metadata (checked by `download`)."""
    dump_file = Path(dump_file)
    dest = S3Url.parse(url).join(dump_file.name)
    digest = sha256_file(dump_file)
    with dump_file.open("rb") as body:
        client.put_object(Bucket=dest.bucket, Key=dest.key, Body=body,
                          ChecksumSHA256=_b64(digest), Metadata={"sha256": digest})
    head = client.head_object(Bucket=dest.bucket, Key=dest.key)
    if head["ContentLength"] != dump_file.stat().st_size:
        raise CorruptBackup(f"{dest}: stored {head['ContentLength']} bytes, "
                            f"expected {dump_file.stat().st_size}")
    urls = [str(dest)]
    mpath = manifest_path(dump_file)
    if mpath.exists():
        mdest = S3Url(dest.bucket, dest.key + mpath.name[len(dump_file.name):])
        client.put_object(Bucket=mdest.bucket, Key=mdest.key, Body=mpath.read_bytes())
        urls.append(str(mdest))
    return urls


def download(url: str, dest_dir: Path, client) -> Path:
    """Downloads a dump (and its manifest, if stored) and checks the SHA-256 recorded at upload."""
    src = S3Url.parse(url)
    dest_dir.mkdir(parents=True, exist_ok=True)
    local = dest_dir / Path(src.key).name
    obj = client.get_object(Bucket=src.bucket, Key=src.key)
    h = hashlib.sha256()
    with local.open("wb") as f:
        for chunk in obj["Body"].iter_chunks(1 << 20):
            h.update(chunk)
            f.write(chunk)
    expected = obj.get("Metadata", {}).get("sha256")
    if expected and h.hexdigest() != expected:
        raise CorruptBackup(f"{url}: SHA-256 {h.hexdigest()} != uploaded {expected}")
    try:
        m = client.get_object(Bucket=src.bucket, Key=src.key + ".manifest.json")
        manifest_path(local).write_bytes(m["Body"].read())
    except client.exceptions.NoSuchKey:
        pass
    return local
