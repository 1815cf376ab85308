"""Policy pack entry point. Importing this module starts the policy gRPC server and blocks:
only `pulumi preview --policy-pack infra/policies` should run it."""

import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel, PolicyPack

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `infra`

from infra.policies.rules import ALL_POLICIES  # noqa: E402

PolicyPack(name="lighthouse-guardrails", enforcement_level=EnforcementLevel.MANDATORY,
           policies=list(ALL_POLICIES))
