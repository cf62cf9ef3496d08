"""Stale runs (benchmark/runs/stale.py): the archive folder's name, and a run archived whole then reset
for training again, keeping its config, events and lease. Which runs a bump makes stale is tested on a
trained store in test_revisions.py."""

import json
import re
import time
from pathlib import Path

import pytest

from benchmark.errors import Failed
from benchmark.runs.stale import StaleRuns, archive_and_reset, utc_stamp
from benchmark.store.layout import LEASE, METRICS, RESULT, Store
from benchmark.store.leases import worker_identity

RID = "00000000000000ab"


def _finished(tmp_path):
    store = Store(tmp_path)
    store.ensure_config(RID, {"model": "x"})
    store.write_result(RID, {"id": RID, "status": "done", "config": {"model": "x"}, "metrics": {}})
    store.run_file(RID, METRICS).write_text('{"epoch": 1}\n')
    store.run_file(RID, "events.jsonl").write_text('{"kind": "finish"}\n')
    store.run_file(RID, LEASE).write_text(json.dumps({"generation": 4, "expires": 0}))
    return store


def test_the_stamp_is_utc_to_the_microsecond_and_safe_as_a_name():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{6}Z", utc_stamp())


def test_a_run_is_archived_whole_then_reset(tmp_path):
    store = _finished(tmp_path)
    before = {p.name: p.read_bytes() for p in store.run_dir(RID).iterdir() if not p.name.startswith(".")}
    dest = archive_and_reset(store, RID)
    archived = {p.name: p.read_bytes() for p in Path(dest).iterdir()}
    assert archived == before  # everything, as it was
    left = sorted(p.name for p in store.run_dir(RID).iterdir() if not p.name.startswith("."))
    assert left == ["config.json", "events.jsonl", "lease.json"] and store.result(RID) is None
    assert StaleRuns(store, now={}).why(RID) == []  # not finished now: not stale


def test_a_run_with_a_live_lease_is_not_reset(tmp_path):
    store = _finished(tmp_path)
    store.run_file(RID, LEASE).write_text(json.dumps({"owner": worker_identity(), "expires": time.time() + 60}))
    with pytest.raises(Failed, match="is being trained"):
        archive_and_reset(store, RID)
    assert store.run_file(RID, RESULT).exists()
