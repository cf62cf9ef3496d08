"""reproduce's parts (benchmark/commands/reproduce.py): the options and the log file a local worker
process is started with, the progress line, the failures grouped by reason. Fast: nothing is trained."""

import dataclasses
from types import SimpleNamespace

import pytest

from benchmark import cli
from benchmark.commands import reproduce
from benchmark.engine.accel import Accel
from benchmark.runs.options import WorkerOptions
from benchmark.store.layout import Store


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


def test_progress_line_shows_epoch_batches_speed_and_eta():

    from benchmark.commands.reproduce import progress_line, run_eta_s

    p = {"epoch": 2, "epochs": 10, "step": 100, "steps": 400, "images_per_s": 1280.0, "step_s": 0.05}
    # 300 steps left in epoch 3, then 7 epochs of 400 steps, at 0.05 s per step
    assert run_eta_s(p) == pytest.approx((300 + 7 * 400) * 0.05)
    assert run_eta_s({"epoch": 0, "epochs": 10}) is None  # not measured yet: no made-up ETA
    running = SimpleNamespace(state="running", lease={"progress": p}, config={"model": "resnet32"})
    starting = SimpleNamespace(state="running", lease={"progress": {}}, config={"model": "resnet8",
                                                                                "recipe": {"epochs": 240}})
    line = progress_line({"a": running, "b": starting})
    assert line == "resnet32 e3/10 b100/400 1280 img/s ETA 3min, resnet8 e1/240"


def test_failures_are_grouped_by_reason_with_counts_and_a_way_to_retry():

    from benchmark.commands.reproduce import failure_summary

    def run(rid, state, reason):
        return SimpleNamespace(id=rid, state=state, reason=reason, config={"model": "resnet8"})

    missing = "MissingData: ./data/cifar-100-python: folder not found; get it with `python runner.py data download cifar100`"
    states = {f"t{i}": run(f"t{i}", "failed", missing) for i in range(3)}
    states["x"] = run("x", "failed", "RunFailed: non-finite training loss (nan) in epoch 1\nTraceback ...")
    states.update({f"s{i}": run(f"s{i}", "blocked", "depends on t0, which failed or is blocked") for i in range(5)})
    states["d"] = run("d", "done", None)
    lines = failure_summary(states)
    assert lines[0].startswith("4 failed, 5 blocked")
    assert lines[1] == f"  3 x {missing}" and lines[2] == "  1 x RunFailed: non-finite training loss (nan) in epoch 1"
    assert "--failures" in lines[3] and "--retry-failed" in lines[-1]
    assert len(lines) == 5  # grouped: not one line per run
    full = failure_summary(states, full=True)
    assert sum(line.startswith("  failed ") for line in full) == 4 and sum(line.startswith("  blocked ") for line in full) == 5
    assert failure_summary({"d": states["d"]}) == []
