"""Secrets: the database password, the backup passphrase and the database TLS CA, kept in
Secrets Manager.

The password and passphrase come from pulumi-random, the CA (P-256 key, 10-year self-signed
certificate) from pulumi-tls; all are stable across runs and stored encrypted in state; the
password is exported only as a Pulumi secret. The Secrets Manager value is JSON (SECRET_KEYS)
``{"username": "lighthouse", "password": "...", "dbname": "lighthouse", "port": 5432,
"backup_cipher_pass": "...", "tls_ca_cert": "PEM", "tls_ca_key": "PEM"}``:
backup_cipher_pass is pgBackRest's repository passphrase (without it the backups cannot be
read), tls_ca_* the CA the timescaledb role signs the server certificate with and the prober
verifies it by (sslmode=verify-full); a replaced db host keeps the CA the probers trust. The
passphrase and the CA are protected like the data in prod. A Patroni cluster (ha: patroni)
adds HA_SECRET_KEYS; the cluster's etcd member certificates are signed by the same CA.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random
import pulumi_tls as tls

from infra.common import COMPONENT_PREFIX, child, stateful, tags
from infra.config import StackConfig

DB_USER = "lighthouse"
DB_NAME = "lighthouse"
# The secret's JSON shape; inventories/aws/group_vars/all.yml reads password and
# backup_cipher_pass out of it.
SECRET_KEYS = ("username", "password", "dbname", "port", "backup_cipher_pass", "tls_ca_cert",
               "tls_ca_key")
# Added for ha: patroni (group_vars hands them to the patroni role): the replication and
# pg_rewind roles' passwords and the Patroni REST API's basic-auth password.
HA_SECRET_KEYS = ("patroni_replication_password", "patroni_rewind_password",
                  "patroni_restapi_password")
CA_DAYS = 3650


@dataclass(frozen=True)
class SecretsArgs:
    cfg: StackConfig


class Secrets(pulumi.ComponentResource):
    secret_arn: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    db_password: pulumi.Output[str]

    def __init__(self, name: str, args: SecretsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{COMPONENT_PREFIX}:Secrets", name, None, opts)
        cfg = args.cfg
        password = random.RandomPassword(
            "db-password", length=32, special=True, override_special="-_.~",
            opts=child(self, additional_secret_outputs=["result"]))
        cipher_pass = random.RandomPassword(
            "backup-cipher-pass", length=64, special=False,
            opts=stateful(self, cfg, additional_secret_outputs=["result"]))
        ca_key = tls.PrivateKey(
            "db-tls-ca-key", algorithm="ECDSA", ecdsa_curve="P256",
            opts=stateful(self, cfg))  # pulumi-tls marks the private key outputs secret
        ca_cert = tls.SelfSignedCert(
            "db-tls-ca", private_key_pem=ca_key.private_key_pem, is_ca_certificate=True,
            validity_period_hours=CA_DAYS * 24, allowed_uses=["cert_signing", "crl_signing"],
            set_subject_key_id=True,  # the server certificate names it (authorityKeyIdentifier)
            subject=tls.SelfSignedCertSubjectArgs(
                common_name=f"Lighthouse database CA ({cfg.stack})", organization="Lighthouse"),
            opts=stateful(self, cfg))
        secret = aws.secretsmanager.Secret(
            "db", name=f"lighthouse/{cfg.stack}/db",
            description="Lighthouse database credentials, backup passphrase and TLS CA (JSON)",
            recovery_window_in_days=30 if cfg.deletion_protection else 0,
            tags=tags(cfg, "db-secret"), opts=stateful(self, cfg))
        ha = [random.RandomPassword(key.replace("_", "-"), length=32, special=False,
                                    opts=child(self, additional_secret_outputs=["result"]))
              for key in (HA_SECRET_KEYS if cfg.database.ha == "patroni" else ())]
        keys = SECRET_KEYS + HA_SECRET_KEYS[:len(ha)]
        value = pulumi.Output.all(password.result, cipher_pass.result, ca_cert.cert_pem,
                                  ca_key.private_key_pem, *[p.result for p in ha]).apply(
            lambda v: json.dumps(dict(zip(keys, (DB_USER, v[0], DB_NAME, 5432, *v[1:]),
                                          strict=True))))
        secret_string: pulumi.Output[str] = pulumi.Output.secret(value)
        aws.secretsmanager.SecretVersion("db", secret_id=secret.id, secret_string=secret_string,
                                         opts=child(self))
        self.secret_arn = secret.arn
        self.secret_name = secret.name
        self.db_password = pulumi.Output.secret(password.result)
        self.register_outputs({"secret_arn": self.secret_arn})
