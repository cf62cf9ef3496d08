"""Retry (benchmark/runs/retry.py): each failed attempt counted in attempts.json with its event, and at
the budget the run recorded as failed with its last reason."""

import json

from benchmark.runs.events import events
from benchmark.runs.options import WorkerOptions
from benchmark.runs.retry import attempts, record_error
from benchmark.store.layout import ATTEMPTS, Store

RID = "00000000000000aa"


def test_attempts_count_up_to_the_budget_then_the_run_fails(tmp_path):
    store = Store(tmp_path)
    store.ensure_config(RID, {"model": "resnet8"})
    opts, logged = WorkerOptions(store=str(tmp_path), max_attempts=2, name="w1"), []
    assert attempts(store, RID) == 0
    assert record_error(store, RID, "OSError: disk", opts, logged.append) == "retry"
    assert attempts(store, RID) == 1 and store.result(RID) is None
    assert record_error(store, RID, "OSError: disk again", opts, logged.append) == "failed"
    assert store.result(RID) == {"id": RID, "status": "failed", "config": {"model": "resnet8"},
                                 "reason": "failed 2 times; last: OSError: disk again"}
    assert [(e["kind"], e["worker"], e["reason"]) for e in events(store, RID)] == \
        [("error", "w1", "OSError: disk"), ("error", "w1", "OSError: disk again")]
    assert logged == [f"run {RID}: OSError: disk", f"run {RID}: OSError: disk again"]


def test_an_odd_attempts_file_counts_as_none(tmp_path):
    store = Store(tmp_path)
    store.ensure_config(RID, {"model": "resnet8"})
    for odd in ([3], {"failed_attempts": "2"}, {"failed_attempts": True}):
        store.run_file(RID, ATTEMPTS).write_text(json.dumps(odd))
        assert attempts(store, RID) == 0
    store.run_file(RID, ATTEMPTS).write_text("{")
    assert attempts(store, RID) == 0
