"""Hours as people read them (benchmark/catalog/hours.py)."""

from benchmark.catalog.hours import fmt_hours


def test_seconds_under_a_minute_minutes_under_an_hour_else_hours():
    assert fmt_hours(10 / 3600) == "10 s"
    assert fmt_hours(0.5) == "30 min"
    assert fmt_hours(1 / 60) == "1 min"  # a minute exactly is minutes
    assert fmt_hours(1.0) == "1.0 h" and fmt_hours(12.25) == "12.2 h"
