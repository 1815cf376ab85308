"""A local S3 for pgBackRest and dump uploads: moto's server behind a TLS front (stunnel4).

pgBackRest only talks HTTPS to S3. `moto_server --ssl` breaks PUTs ("unexpected eof while
reading") because werkzeug does not close TLS cleanly, so plain moto_server listens on loopback
and stunnel4 terminates TLS on the address the sandbox hosts can reach. Certificates: a
throw-away CA (hand its file to pgBackRest as `repo1-storage-ca-file`) and a server certificate
for the listening address (built with `cryptography`, see write_certs).

    with MotoS3.start(workdir, bind="10.77.0.1", buckets=["lighthouse-backups"]) as s3:
        s3.endpoint   # https://10.77.0.1:PORT
        s3.ca_file    # PEM to trust

CLI (foreground, for the local sandbox): python -m lighthouse_ops.moto_s3 --bind ADDR --port N
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# moto accepts any key pair; these name the fake account in configs and logs.
ACCESS_KEY = "lighthouse-moto-access"
SECRET_KEY = "lighthouse-moto-secret"  # noqa: S105 - moto's fake credentials
REGION = "us-east-1"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def write_certs(workdir: Path, names: list[str]) -> tuple[Path, Path]:
    """CA file and combined server key+cert PEM valid for `names`.

    An IP address goes in both as an IP SAN (Python, curl) and as a DNS SAN: pgBackRest 2.45
    matches the endpoint only against DNS names and CN ("unable to find hostname '10.x' in
    certificate"). trustme cannot do the latter, so the certificates are built here.
    """
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lighthouse sandbox S3 CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(hours=1))
               .not_valid_after(now + dt.timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                            False), critical=True)
               .sign(ca_key, hashes.SHA256()))
    sans: list[x509.GeneralName] = []
    for name in names:
        sans.append(x509.DNSName(name))
        with contextlib.suppress(ValueError):
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, server_pem = workdir / "ca.pem", workdir / "server.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server_pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(server_pem, 0o600)
    os.chmod(ca_file, 0o644)
    return ca_file, server_pem


def stunnel_binary() -> str:
    for name in ("stunnel4", "stunnel"):
        if found := shutil.which(name):
            return found
    raise RuntimeError("stunnel4 is not installed (apt-get install stunnel4; listed in "
                       "scripts/apt-packages.txt)")


@dataclass
class MotoS3:
    workdir: Path
    bind: str
    port: int
    moto_port: int
    ca_file: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        host = f"[{self.bind}]" if ":" in self.bind else self.bind
        return f"https://{host}:{self.port}"

    @property
    def plain_endpoint(self) -> str:
        """moto without TLS, loopback only (for boto3 on the controller)."""
        return f"http://127.0.0.1:{self.moto_port}"

    @classmethod
    def start(cls, workdir: Path, *, bind: str = "127.0.0.1", port: int | None = None,
              buckets: list[str] | None = None, extra_names: list[str] | None = None,
              timeout: float = 30) -> MotoS3:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        names = [bind, "localhost", "127.0.0.1", *(extra_names or [])]
        ca_file, server_pem = write_certs(workdir, list(dict.fromkeys(names)))
        moto_port, port = free_port(), port or free_port(bind)
        log = (workdir / "moto.log").open("ab")
        moto_bin = Path(sys.executable).with_name("moto_server")
        moto = subprocess.Popen([str(moto_bin), "-H", "127.0.0.1", "-p", str(moto_port)],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        conf = workdir / "stunnel.conf"
        conf.write_text(
            "foreground = yes\npid =\ndebug = warning\n"
            f"output = {workdir / 'stunnel.log'}\n"
            "[s3]\n"
            f"accept = {bind}:{port}\nconnect = 127.0.0.1:{moto_port}\n"
            f"cert = {server_pem}\n")
        tunnel = subprocess.Popen([stunnel_binary(), str(conf)], stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        s3 = cls(workdir, bind, port, moto_port, ca_file, [moto, tunnel])
        if not (wait_port("127.0.0.1", moto_port, timeout) and wait_port(bind, port, timeout)):
            s3.stop()
            raise RuntimeError(f"moto/stunnel did not start within {timeout}s; see "
                               f"{workdir}/moto.log and stunnel.log")
        for bucket in buckets or []:
            s3.create_bucket(bucket)
        return s3

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.plain_endpoint, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()

    def __enter__(self) -> MotoS3:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="127.0.0.1", type=lambda a: str(ipaddress.ip_address(a)))
    parser.add_argument("--port", type=int, default=9443)
    parser.add_argument("--workdir", type=Path, default=Path(".sandbox/moto-s3"))
    parser.add_argument("--bucket", action="append", default=[])
    args = parser.parse_args(argv)
    s3 = MotoS3.start(args.workdir, bind=args.bind, port=args.port, buckets=args.bucket)
    print(f"moto_s3 endpoint={s3.endpoint} ca_file={s3.ca_file} "
          f"plain_endpoint={s3.plain_endpoint}", flush=True)
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stop and all(p.poll() is None for p in s3.procs):
            time.sleep(0.5)
    finally:
        s3.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
