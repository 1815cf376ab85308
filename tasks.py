"""invoke front for Lighthouse Ops runbooks: `invoke --list`.

Thin on purpose: every task body lives in an importable, tested module under
app/lighthouse_ops/; this file only gathers their collections.
"""

from invoke import Collection
from lighthouse_ops.tasks import aws, backup, cost, db, local, sandbox

ns = Collection()
for module in (sandbox, local, db, backup, aws, cost):
    ns.add_collection(Collection.from_module(module))
