"""bench's horizontal fusion cases (benchmark/commands/bench_horizontal.py): for each N, N students
timed apart, then as one batched lane, through the trainer's own step (train.GroupStep), on bench's
stream; small CPU sizes (the timings themselves are measured by `runner.py bench`, not asserted)."""

import collections

import pytest
import torch

from benchmark.commands import bench
from benchmark.commands.bench_horizontal import horizontal_cases
from benchmark.engine import train
from benchmark.engine.accel import Accel
from benchmark.engine.data import get_spec, synthetic_arrays
from benchmark.engine.models import build_model
from benchmark.engine.pipeline import Augmentation, TensorPipeline
from benchmark.store.layout import Store


def spy_on_lanes(monkeypatch) -> list[list[bool]]:
    """Per GroupStep call, whether each of its runs was in a lane at that step; the real step still runs."""
    calls, real = [], train.GroupStep.__call__

    def spy(self, batches, runs, *args, **kwargs):
        calls.append([r.in_lane for r in runs])
        return real(self, batches, runs, *args, **kwargs)

    monkeypatch.setattr(train.GroupStep, "__call__", spy)
    return calls


def test_each_size_is_timed_apart_then_batched_in_one_lane(monkeypatch, tmp_path):
    calls = spy_on_lanes(monkeypatch)
    torch.manual_seed(0)
    dev, accel, batch_size = torch.device("cpu"), Accel().resolved(torch.device("cpu")), 4
    spec = get_spec("cifar100")
    pipe = TensorPipeline(synthetic_arrays("cifar100", "train", per_class=1),
                          synthetic_arrays("cifar100", "test", per_class=1), spec.mean, spec.std,
                          Augmentation(4, True), batch_size=batch_size, drop_last=True, device=dev)
    teacher = build_model("resnet8", 100).eval().requires_grad_(False)
    cfg = bench._config(batch_size)
    stream = train.Stream(cfg, pipe, teacher, accel)
    step = train.GroupStep(dev, accel, collections.defaultdict(lambda: stream))
    logged = []
    cases = horizontal_cases(bench._timed, (1, 2), cfg, Store(tmp_path), dev, accel, pipe, step, stream,
                             warmup=1, steps=2, log=logged.append)
    assert [(c["name"], c["students"], c["steps"]) for c in cases] == [("horizontal1", 1, 2), ("horizontal2", 2, 2)]
    for c in cases:
        assert c["separate_seconds"] > 0 and c["batched_seconds"] > 0
        assert c["ratio"] == pytest.approx(c["separate_seconds"] / c["batched_seconds"])
        for label in ("separate", "batched"):
            assert c[f"{label}_per_student_images_per_s"] == pytest.approx(
                2 * batch_size * c["students"] / c[f"{label}_seconds"])
    # 1 + 2 steps per mode and size: N=1 apart, N=1 "batched", N=2 apart, N=2 batched in one lane
    assert [len(runs) for runs in calls] == [1] * 6 + [2] * 6
    assert not any(any(lane) for lane in calls[:3] + calls[6:9])  # apart: every run its own kernels
    assert all(all(lane) for lane in calls[9:])  # batched: both runs stepped in the lane
    assert len(logged) == 4 and "2 students batched: 1 + 2 steps" in logged[-1]
