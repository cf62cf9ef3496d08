"""The store's layout and its writes (benchmark/store/layout.py).

metrics.jsonl: one line appended per epoch, fenced like every other run write; a torn last
line (a kill mid-append) is ignored by readers and replaced when the run resumes."""

import json
import time

import pytest

from benchmark.engine import config
from benchmark.runs.lease import Lease
from benchmark.runs.options import WorkerOptions
from benchmark.store.layout import LEASE, METRICS, Store, WriteRefused, atomic_write_json, read_json
from tests.helpers import tiny


def enqueued(store):
    cfg = config.resolve(tiny())
    run_id = config.run_id(cfg)
    store.ensure_config(run_id, cfg)
    return run_id


def test_append_adds_lines_in_place_and_rewrite_replaces_the_file(tmp_path):
    store = Store(tmp_path)
    run_id = enqueued(store)
    store.append_metrics(run_id, [{"epoch": 1}])
    path = store.run_file(run_id, METRICS)
    inode = path.stat().st_ino
    store.append_metrics(run_id, [{"epoch": 2}, {"epoch": 3}])
    assert path.stat().st_ino == inode  # the same file, grown: not rewritten
    assert store.metrics(run_id) == [{"epoch": 1}, {"epoch": 2}, {"epoch": 3}]
    store.rewrite_metrics(run_id, [{"epoch": 1}])
    assert path.stat().st_ino != inode  # renamed into place whole
    assert store.metrics(run_id) == [{"epoch": 1}]


def test_a_torn_last_line_is_ignored_but_a_bad_line_before_it_is_not(tmp_path):
    store = Store(tmp_path)
    run_id = enqueued(store)
    store.append_metrics(run_id, [{"epoch": 1}, {"epoch": 2}])
    path = store.run_file(run_id, METRICS)
    text = path.read_text()
    path.write_text(text + '{"epoch": 3, "l')  # a kill in the middle of the third append
    assert store.metrics(run_id) == [{"epoch": 1}, {"epoch": 2}]
    path.write_text('{"epoch": 1\n' + text)
    with pytest.raises(ValueError):
        store.metrics(run_id)


def test_an_append_is_fenced_as_any_run_write(tmp_path):
    store_a, store_b = Store(tmp_path), Store(tmp_path)
    run_id = enqueued(store_a)
    a = Lease(store_a, run_id, WorkerOptions(lease_seconds=60, heartbeat_seconds=60, name="a"))
    assert a.claim()
    store_a.append_metrics(run_id, [{"epoch": 1}])
    with pytest.raises(WriteRefused, match="leased by a"):  # a writer without the lease
        store_b.append_metrics(run_id, [{"epoch": 9}])
    lease = read_json(store_a.run_dir(run_id) / LEASE)
    atomic_write_json(store_a.run_dir(run_id) / LEASE, {**lease, "expires": time.time() - 1})
    b = Lease(store_b, run_id, WorkerOptions(lease_seconds=30, name="b"))
    assert b.claim()
    with pytest.raises(WriteRefused, match="generation 1 was lost"):  # the paused former holder
        store_a.append_metrics(run_id, [{"epoch": 2}])
    store_b.write_result(run_id, {"id": run_id, "status": "done", "metrics": {"top1": 1.0}})
    with pytest.raises(WriteRefused, match="finished"):
        store_b.append_metrics(run_id, [{"epoch": 2}])
    b.release()
    assert [json.loads(line) for line in store_a.run_file(run_id, METRICS).read_text().splitlines()] == [{"epoch": 1}]
