"""AWS runbooks (boto3): snapshot, restore-snapshot, scale, grow-volume, spot-recover, backup.

Each runbook is `plan_*(run, ...) -> Plan` (read-only; refusals happen here) followed by
`runbook.execute(plan, console, dry_run=..., yes=...)`. `AwsRun` carries the EC2 client,
the host operations (Ansible; a recorder in tests), the verifier and the console.
Invoke front: lighthouse_ops/tasks/aws.py. Operator guide: docs/runbooks-aws.md.
"""
