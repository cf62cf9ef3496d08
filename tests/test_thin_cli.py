"""The package functions behind the thin command line: the session notes, status's hours, the
options a local worker process is started with, and its log file. Fast: nothing is trained."""

import dataclasses
from types import SimpleNamespace

import pytest

from benchmark import cli
from benchmark.commands import reproduce
from benchmark.commands.status import gpu_hours_left
from benchmark.engine.accel import Accel
from benchmark.runs.options import WorkerOptions
from benchmark.runs.sessions import last_profile, read_sessions, record_session
from benchmark.store.layout import Store, atomic_write_json


def test_last_profile_is_the_newest_session_naming_the_table_with_a_known_profile(tmp_path):
    store = Store(tmp_path)
    assert last_profile(store, "t1") == "paper"  # no notes: paper
    record_session(store, ["t1", "t2"], "quick")
    record_session(store, ["t2"], "smoke")
    assert [last_profile(store, t) for t in ("t1", "t2", "t3")] == ["quick", "smoke", "paper"]

    notes = read_sessions(store)
    atomic_write_json(store.sessions_file, notes + ["garbage", {"tables": ["t1"], "profile": "bogus"},
                                                    {"tables": "t1", "profile": "smoke"}, {"tables": [["t1"]]}])
    assert last_profile(store, "t1") == "quick"  # damaged notes after it say nothing
    atomic_write_json(store.sessions_file, {"not": "a list"})
    assert last_profile(store, "t2") == "paper"
    record_session(store, ["t1"], "smoke")  # a damaged file is started afresh
    assert [s["profile"] for s in read_sessions(store)] == ["smoke"]


def test_the_session_notes_keep_the_newest_fifty(tmp_path):
    store = Store(tmp_path)
    for i in range(55):
        record_session(store, [f"t{i}"], "smoke")
    notes = read_sessions(store)
    assert len(notes) == 50 and notes[0]["tables"] == ["t5"] and notes[-1]["tables"] == ["t54"]


def _pending(config):
    return {"a": SimpleNamespace(state="pending", config=config)}


def test_hours_left_skips_a_run_the_cost_model_cannot_cost_and_surfaces_other_errors(tmp_path, monkeypatch):
    from benchmark.catalog import runcost

    store = Store(tmp_path)
    assert gpu_hours_left(store, _pending({"model": "resnet9000", "dataset": "nope", "teacher": None}), None) == 0.0
    monkeypatch.setattr(runcost, "estimate_gpu_hours", lambda *_: 2.5)
    assert gpu_hours_left(store, {**_pending({"model": "m"}), "b": SimpleNamespace(state="done", config={})},
                          None) == 2.5

    def broken(*_):
        raise RuntimeError("a bug in the cost model")
    monkeypatch.setattr(runcost, "estimate_gpu_hours", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        gpu_hours_left(store, _pending({"model": "m"}), None)


def test_a_local_worker_is_started_with_the_options_reproduce_was_given(tmp_path):
    opts = WorkerOptions(store=str(tmp_path), device="cpu", lease_seconds=30.0, heartbeat_seconds=5.0,
                         max_attempts=5, num_workers=2, fuse=False, data_root=str(tmp_path / "data"),
                         accel=Accel(amp="bf16", channels_last=True, sgd="foreach", deterministic=True, numerics="strict"),
                         tensorboard=True)
    argv = ["worker", "--store", str(tmp_path), "--device", "cpu", *reproduce.worker_cli_args(opts)]
    parsed = cli._worker_options(cli.build_parser().parse_args(argv))
    fields = [f.name for f in dataclasses.fields(WorkerOptions) if f.name != "name"]  # each process names itself
    assert {f: getattr(parsed, f) for f in fields} == {f: getattr(opts, f) for f in fields}


def test_the_parent_closes_its_copy_of_a_local_workers_log(tmp_path, monkeypatch):
    started = []

    class FakePopen:
        def __init__(self, _cmd, stdout, **_kw):  # Popen(cmd, stdout=...)
            assert not stdout.closed  # open while the child is started
            started.append(stdout)
    monkeypatch.setattr(reproduce.subprocess, "Popen", FakePopen)
    store = Store(tmp_path)
    store.queue_dir.mkdir(parents=True)
    reproduce.launch_local(store, store.queue_dir / "jobs.txt", 2, "cpu", [])
    assert [f.name for f in started] == [str(store.worker_log(0)), str(store.worker_log(1))]
    assert all(f.closed for f in started)
