"""Lighthouse AWS topology (Pulumi components) and the cost model.

Importing this package is cheap and cloud-free: ``infra.config`` (typed stack config) and
``infra.cost`` (prices + estimates) import neither ``pulumi`` nor ``pulumi_aws``, so the
runbooks can use them without a Pulumi install. The components (``infra.network``,
``infra.database``, ...) and ``infra.stack`` import Pulumi and are only loaded by
``__main__.py`` and the tests.
"""
