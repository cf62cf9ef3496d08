"""The worker's loop (benchmark/runs/worker.py) without training: an empty store, and a run blocked by
its failed teacher, which is never attempted; the worker returns its tally. Training, retries and
kills are tested in test_queue.py, test_faults.py and test_fencing.py."""

from benchmark.engine import config as C
from benchmark.runs.options import WorkerOptions
from benchmark.runs.worker import run_worker
from benchmark.store.layout import Store
from tests.helpers import tiny


def test_an_empty_store_and_a_blocked_run_end_the_worker_with_nothing_done(tmp_path):
    logged = []
    assert run_worker(WorkerOptions(store=str(tmp_path / "empty"), poll_seconds=0.01), logged.append) == {}
    store = Store(tmp_path / "store")
    teacher = C.resolve(tiny())
    tid = C.run_id(teacher)
    store.ensure_config(tid, teacher)
    store.write_result(tid, {"id": tid, "status": "failed", "config": teacher, "reason": "RunFailed: nan"})
    student = C.resolve(tiny(teacher={"run": tid}, loss={"name": "kd"}))
    sid = C.run_id(student)
    store.ensure_config(sid, student)
    assert run_worker(WorkerOptions(store=str(store.root), poll_seconds=0.01), logged.append) == {}
    assert store.result(sid) is None and not store.run_file(sid, "lease.json").exists()  # never claimed
    assert logged == []
