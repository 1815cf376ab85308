"""Secrets: a generated database password and backup passphrase kept in Secrets Manager.

Both come from pulumi-random (stable across runs, stored encrypted in state); the password is
exported only as a Pulumi secret. The Secrets Manager value is JSON (SECRET_KEYS)
``{"username": "lighthouse", "password": "...", "dbname": "lighthouse", "port": 5432,
"backup_cipher_pass": "..."}``; the last is pgBackRest's repository passphrase (without it the
backups cannot be read, so it is protected like the data in prod).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.common import COMPONENT_PREFIX, child, stateful, tags
from infra.config import StackConfig

DB_USER = "lighthouse"
DB_NAME = "lighthouse"
# The secret's JSON shape; inventories/aws/group_vars/all.yml reads password and
# backup_cipher_pass out of it.
SECRET_KEYS = ("username", "password", "dbname", "port", "backup_cipher_pass")


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
        secret = aws.secretsmanager.Secret(
            "db", name=f"lighthouse/{cfg.stack}/db",
            description="Lighthouse PostgreSQL credentials and backup passphrase (JSON)",
            recovery_window_in_days=30 if cfg.deletion_protection else 0,
            tags=tags(cfg, "db-secret"), opts=stateful(self, cfg))
        # pulumi's stub infers Output[Never] for Output.secret(Output[str]), hence the ignore.
        value = pulumi.Output.all(password.result, cipher_pass.result).apply(
            lambda v: json.dumps(dict(zip(SECRET_KEYS, (DB_USER, v[0], DB_NAME, 5432, v[1]),
                                          strict=True))))
        secret_string: pulumi.Output[str] = pulumi.Output.secret(value)
        aws.secretsmanager.SecretVersion("db", secret_id=secret.id, secret_string=secret_string,
                                         opts=child(self))
        self.secret_arn = secret.arn
        self.secret_name = secret.name
        self.db_password = pulumi.Output.secret(password.result)
        self.register_outputs({"secret_arn": self.secret_arn})
