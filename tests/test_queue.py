"""The queue: exactly-once under races and SIGKILLs, stale leases, failures that do not stop it."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import pytest

from benchmark.engine import config as C
from benchmark.runs.events import events
from benchmark.runs.options import WorkerOptions
from benchmark.runs.queue import counts, scan
from benchmark.runs.worker import run_worker
from benchmark.store.layout import LEASE, Store, atomic_write_json
from tests.helpers import REPO, cli, forked_runner, tiny, tiny32


def enqueue(store, raws):
    ids = []
    for raw in raws:
        cfg = C.resolve(raw)
        rid = C.run_id(cfg)
        store.ensure_config(rid, cfg)
        ids.append(rid)
    return ids


def small_dag(store, epochs=3, raw=tiny):
    """A teacher and three students that depend on it, plus an independent run (``raw``: tiny, or
    tiny32 where a kill window needs runs that last)."""
    teacher = enqueue(store, [raw(model="resnet14", recipe={"epochs": epochs})])[0]
    students = enqueue(store, [raw(teacher={"run": teacher}, loss={"name": "kd", "tau": t}, recipe={"epochs": epochs})
                               for t in (1.0, 4.0, 8.0)])
    lone = enqueue(store, [raw(seed=5, recipe={"epochs": epochs})])
    return [teacher, *students, *lone]


def worker_proc(store, *extra):
    """`runner.py worker` in a process of its own (forked: it starts training at once)."""
    return forked_runner("worker", "--store", store.root, "--device", "cpu", "--lease-seconds", "30", *extra)


def kinds(store, rid):
    return [e["kind"] for e in events(store, rid)]


def comparable(store, rid):
    res = store.result(rid)
    return res["metrics"], res["weights_digest"]


@pytest.mark.heavy
def test_racing_workers_never_train_a_run_twice(tmp_path):
    store = Store(tmp_path)
    ids = small_dag(store, epochs=2)
    procs = [worker_proc(store) for _ in range(3)]
    for p in procs:
        assert p.wait(timeout=300) == 0
    for rid in ids:
        assert store.is_done(rid)
        assert kinds(store, rid) == ["claim", "finish"], rid
    assert counts(scan(store)) == {"done": 5, "running": 0, "pending": 0, "blocked": 0, "failed": 0}


@pytest.mark.heavy
def test_repeated_sigkills_end_with_each_run_done_once_and_identical(tmp_path):
    reference = Store(tmp_path / "reference")
    ids = small_dag(reference, raw=tiny32)
    assert run_worker(WorkerOptions(store=str(reference.root), poll_seconds=0.2)) == {"done": 5}
    store = Store(tmp_path / "killed")
    assert small_dag(store, raw=tiny32) == ids
    rng = random.Random(0)
    kills = 0
    while not all(store.is_done(r) for r in ids) and kills < 6:
        procs = [worker_proc(store) for _ in range(2)]
        time.sleep(rng.uniform(0.5, 2.5))  # the whole DAG takes 4-8 s of two workers
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                kills += 1
            p.wait()
    assert kills >= 2, "the workers finished before they could be killed: the test proved nothing"
    last = worker_proc(store)
    assert last.wait(timeout=300) == 0
    for rid in ids:
        assert kinds(store, rid).count("finish") == 1, rid
        assert comparable(store, rid) == comparable(reference, rid), rid
    status = cli("status", "--store", store.root, "--json")
    assert status.returncode == 0
    c = json.loads(status.stdout)
    assert (c["done"], c["failed"], c["pending"], c["running"]) == (5, 0, 0, 0)


def test_stale_leases_are_taken_over_and_live_ones_respected(tmp_path):
    store = Store(tmp_path)
    dead_here, expired_elsewhere, live_elsewhere = enqueue(store, [tiny(seed=s, recipe={"epochs": 1}) for s in (1, 2, 3)])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    far = time.time() + 3600
    atomic_write_json(store.run_dir(dead_here) / LEASE,
                      {"owner": {"host": socket.gethostname(), "pid": dead.pid, "start": None}, "expires": far})
    atomic_write_json(store.run_dir(expired_elsewhere) / LEASE,
                      {"owner": {"host": "other-node", "pid": 1, "start": None}, "expires": time.time() - 1})
    live_until = time.time() + 2
    atomic_write_json(store.run_dir(live_elsewhere) / LEASE,
                      {"owner": {"host": "other-node", "pid": 1, "start": None}, "expires": live_until})
    tally = run_worker(WorkerOptions(store=str(store.root), poll_seconds=0.2))
    assert store.is_done(dead_here) and store.is_done(expired_elsewhere)
    # the live lease was respected while it lasted, then taken over when it expired
    assert store.is_done(live_elsewhere) and tally == {"done": 3}
    assert events(store, live_elsewhere)[0]["time"] >= live_until


def test_io_error_fails_that_run_after_retries_and_the_worker_goes_on(tmp_path, monkeypatch):
    import benchmark.store.layout as store_module

    store = Store(tmp_path)
    bad, good = enqueue(store, [tiny(seed=1, recipe={"epochs": 1}), tiny(seed=2, recipe={"epochs": 1})])
    real = store_module.write_temp

    def full_disk(path, data):
        if bad in str(path) and path.name in ("checkpoint.pt", "model.pt"):
            raise OSError(28, "No space left on device")
        return real(path, data)
    monkeypatch.setattr(store_module, "write_temp", full_disk)
    tally = run_worker(WorkerOptions(store=str(store.root), poll_seconds=0.1, max_attempts=2), log=lambda _m: None)
    assert store.is_done(good)
    res = store.result(bad)
    assert res["status"] == "failed" and "No space left on device" in res["reason"]
    assert kinds(store, bad).count("error") == 2 and tally == {"done": 1, "retry": 1, "failed": 1}


def test_failed_run_blocks_its_dependents_which_are_never_attempted(tmp_path):
    store = Store(tmp_path)
    (teacher,) = enqueue(store, [tiny(model="resnet14", recipe={"epochs": 1, "optimizer": {"lr": 1.0e30}})])
    (student,) = enqueue(store, [tiny(teacher={"run": teacher}, loss={"name": "kd"}, recipe={"epochs": 1})])
    run_worker(WorkerOptions(store=str(store.root), poll_seconds=0.1))
    states = scan(store)
    assert states[teacher].state == "failed" and "non-finite" in states[teacher].reason
    assert states[student].state == "blocked" and events(store, student) == []
    status = cli("status", "--store", store.root, "--json")
    doc = json.loads(status.stdout)
    assert status.returncode == 1 and doc["failed"] == 1 and doc["blocked"] == 1
    assert {"done", "running", "pending", "failed"} <= set(doc)


def test_corrupt_result_file_does_not_stop_the_queue(tmp_path):
    store = Store(tmp_path)
    ids = enqueue(store, [tiny(seed=s, recipe={"epochs": 1}) for s in (1, 2)])
    run_worker(WorkerOptions(store=str(store.root), poll_seconds=0.1))
    before = comparable(store, ids[0])
    (store.run_dir(ids[0]) / "result.json").write_text('{"id": "trunc')
    assert scan(store)[ids[0]].state == "pending"
    assert run_worker(WorkerOptions(store=str(store.root), poll_seconds=0.1)) == {"done": 1}
    assert comparable(store, ids[0]) == before  # resumed from its last checkpoint, not retrained


CATALOG = str(REPO / "tests" / "catalog")


@pytest.mark.heavy
def test_reproduce_end_to_end_then_nothing_to_do(tmp_path, monkeypatch):
    # reproduce's main() in this process; the worker it starts is a process (spawned, as for a user)
    monkeypatch.setenv("KD_REPRO_CATALOG", CATALOG)
    cmd = ["reproduce", "klmse-table5", "--profile", "smoke", "--store", tmp_path, "--device", "cpu", "--quiet"]
    first = cli(*cmd)
    assert first.returncode == 0, first.stderr + first.stdout
    assert "0 already done" in first.stdout
    report = (tmp_path / "reports" / "klmse-table5.md").read_text()
    second = cli(*cmd)
    assert second.returncode == 0 and "4 runs, 4 already done" in second.stdout
    log = (tmp_path / "queue" / "worker-0.log").read_text().splitlines()
    assert sum(line.startswith("worker ") for line in log) == 1  # one worker session: none the second time
    for run_dir in (tmp_path / "runs").iterdir():  # the log records each run's start, epochs and end
        mine = [line for line in log if line.startswith(f"run {run_dir.name}: ")]
        assert [line.split(": ", 1)[1].split(",")[0] for line in mine] == ["start", "epoch 1/1", "done"], mine
    again = (tmp_path / "reports" / "klmse-table5.md").read_text()
    strip = lambda text: [line for line in text.splitlines() if not line.startswith("- generated")]  # noqa: E731
    assert strip(report) == strip(again)
    assert "| ResNet-50 | 76.28 → " in report and "75.84 (cited)" in report


@pytest.mark.heavy
def test_reproduce_through_submitit_local_executor(tmp_path, monkeypatch):
    monkeypatch.setenv("KD_REPRO_CATALOG", CATALOG)
    proc = cli("reproduce", "klmse-table5", "--profile", "smoke", "--store", tmp_path, "--device", "cpu", "--quiet",
               "--launcher", "submitit-local", "--workers", "2", "--no-report")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "submitted 2 worker job(s)" in proc.stdout and "runs: 4 done" in proc.stdout
