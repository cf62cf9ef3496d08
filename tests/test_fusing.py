"""Which ready runs a worker trains together (benchmark/runs/fusing.py): the same fuse key, up to
fuse_max, and under --horizontal on a claimed group's members again."""

from benchmark.engine.accel import Accel
from benchmark.runs.events import append_event
from benchmark.runs.fusing import fusable
from benchmark.runs.options import WorkerOptions
from benchmark.runs.queue import JobState
from benchmark.store.layout import Store
from tests.helpers import tiny

A, B, C, D = (f"{i:016x}" for i in (10, 11, 12, 13))  # run ids
ID = {"a": A, "b": B, "c": C, "d": D}


def _states(**seeds):
    return {ID[name]: JobState(ID[name], "pending", config=tiny(seed=seed)) for name, seed in seeds.items()}


def test_the_runs_of_the_same_key_up_to_fuse_max():
    states = _states(a=0, b=0, c=1, d=0)  # the seed is part of the key: C trains apart
    ready = [A, B, C, D]
    assert fusable(states, ready, B, WorkerOptions(fuse_max=8)) == [B, A, D]
    assert fusable(states, ready, B, WorkerOptions(fuse_max=2)) == [B, A]
    assert fusable(states, ready, C, WorkerOptions()) == [C]
    assert fusable(states, ready, A, WorkerOptions(fuse=False)) == [A]


def test_under_horizontal_on_a_claimed_run_comes_back_with_its_last_group(tmp_path):
    store = Store(tmp_path)
    states = _states(a=0, b=0, d=0)
    for rid, state in states.items():
        store.ensure_config(rid, state.config)
    append_event(store, A, kind="claim", worker="w", group=[A, D])
    on = WorkerOptions(accel=Accel(horizontal="on"))
    assert fusable(states, [A, B, D], A, on, store) == [A, D]  # B was not in A's group
    assert fusable(states, [A, B, D], B, on, store) == [B, A, D]  # B was never claimed
    assert fusable(states, [A, B, D], A, WorkerOptions(), store) == [A, B, D]  # horizontal off
