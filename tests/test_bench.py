"""bench (benchmark/commands/bench.py, bench_horizontal.py) times the trainer's own per-batch step,
train.GroupStep, not a copy of it: a spy on GroupStep counts the steps bench times and the steps a
training run takes."""

import torch

from benchmark.commands import bench
from benchmark.engine import config as C
from benchmark.engine import train
from benchmark.engine.execution import ExecOptions
from benchmark.store.layout import Store
from tests.helpers import tiny


def spy_on_group_step(monkeypatch) -> list[list]:
    """The runs of every GroupStep call, in order; the real step still runs."""
    calls, real = [], train.GroupStep.__call__

    def spy(self, batches, runs, *args, **kwargs):
        calls.append(list(runs))
        return real(self, batches, runs, *args, **kwargs)

    monkeypatch.setattr(train.GroupStep, "__call__", spy)
    return calls


def test_the_trainer_steps_every_batch_through_group_step(monkeypatch, tmp_path):
    calls = spy_on_group_step(monkeypatch)
    cfg = C.resolve(tiny(recipe={"epochs": 1, "steps_per_epoch": 3, "final_train_eval": False}))
    train.train_run(cfg, Store(tmp_path), ExecOptions())
    assert len(calls) == 3 and all([r.run_id for r in runs] == [C.run_id(cfg)] for runs in calls)


def test_bench_times_the_trainers_step_not_a_copy(monkeypatch):
    assert bench.GroupStep is train.GroupStep
    calls = spy_on_group_step(monkeypatch)
    torch.manual_seed(0)
    out = bench.run_bench("cpu", steps=2, warmup=1, batch_size=8, images=100, loader_workers=0,
                          horizontal_sizes=(2,))
    # engine: 1 student, engine_fused4: 4 students, then 2 students apart and batched: 3 steps each
    assert [len(runs) for runs in calls] == [1] * 3 + [4] * 3 + [2] * 3 + [2] * 3
    assert [c["name"] for c in out["cases"]] == ["reference", "engine", "engine_fused4"]
    assert out["horizontal"][0]["name"] == "horizontal2"
    # the batched case stepped its runs through one lane, as the trainer's form() builds it
    assert all(r.in_lane for r in calls[-1]) and not any(r.in_lane for r in calls[0])
