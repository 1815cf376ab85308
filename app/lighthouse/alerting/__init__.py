"""Alerting: per-monitor state machine (state.py), delivery channels (channels.py), and the
dispatcher that retries deliveries and records every attempt in alert_history (dispatch.py)."""

from lighthouse.alerting.state import Alert, AlertPolicy, Health

__all__ = ["Alert", "AlertPolicy", "Health"]
