"""Host metrics the CloudWatch agent cannot see (PostgreSQL, systemd), for the stack's alarms."""
