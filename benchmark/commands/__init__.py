"""The commands that span every stage: reproduce, status, nightly, and the suite's own checks (the golden
canary, the run-id goldens, bench, device-check). Imports any layer below; only cli.py imports them."""
