"""Database runbooks that read or tune a live server: `tune` (settings from the host's RAM/CPU)
and `diagnose` (one readable health report)."""
