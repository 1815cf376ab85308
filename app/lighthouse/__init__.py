"""Lighthouse prober service: checks, storage, alerting, status page."""

__version__ = "0.1.0"
