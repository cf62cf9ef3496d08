"""What a profile (smoke, quick, paper; DESIGN.md) does to a run: the one place that answers
"what does smoke change?". Imports nothing heavy, so the command line can take its choices."""

from __future__ import annotations

PROFILES = ("smoke", "quick", "paper")
