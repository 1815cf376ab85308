"""HTTP side of the prober: /health, /metrics and the server-rendered status page."""
