"""Pulumi entry point: read the typed stack config, build the components, export outputs.

Everything lives in infra/ (see docs/pulumi.md); this file stays thin on purpose.
"""

import pulumi

from infra.stack import build, config_from_pulumi

for name, value in build(config_from_pulumi()).items():
    pulumi.export(name, value)
