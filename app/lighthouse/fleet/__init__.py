"""A prober fleet on the database we already run: membership (membership.py), who checks what
(ownership.py) and the one combined verdict per monitor (verdict.py). See docs/prober.md."""
