"""Secrets: a generated database password kept in Secrets Manager.

The password comes from pulumi-random (stable across runs, stored encrypted in state) and is
exported only as a Pulumi secret. The Secrets Manager value is JSON
``{"username": "lighthouse", "password": "...", "dbname": "lighthouse", "port": 5432}``.
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
        secret = aws.secretsmanager.Secret(
            "db", name=f"lighthouse/{cfg.stack}/db",
            description="Lighthouse PostgreSQL credentials (JSON)",
            recovery_window_in_days=30 if cfg.deletion_protection else 0,
            tags=tags(cfg, "db-secret"), opts=stateful(self, cfg))
        # pulumi's stub infers Output[Never] for Output.secret(Output[str]), hence the ignore.
        value = pulumi.Output.secret(password.result).apply(  # type: ignore[arg-type]
            lambda pw: json.dumps(
                {"username": DB_USER, "password": pw, "dbname": DB_NAME, "port": 5432}))
        secret_string: pulumi.Output[str] = pulumi.Output.secret(value)
        aws.secretsmanager.SecretVersion("db", secret_id=secret.id, secret_string=secret_string,
                                         opts=child(self))
        self.secret_arn = secret.arn
        self.secret_name = secret.name
        self.db_password = pulumi.Output.secret(password.result)
        self.register_outputs({"secret_arn": self.secret_arn})
