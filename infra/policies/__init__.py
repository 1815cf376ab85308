"""CrossGuard guardrails for the Lighthouse stacks.

``infra.policies.rules`` holds the policies (importable and testable: it never builds a
PolicyPack); ``infra/policies/__main__.py`` is the pack entry point, which starts the policy
gRPC server when run, so nothing else imports it. Use:
``pulumi preview --policy-pack infra/policies`` (with the repo venv active).
"""
