"""status's numbers (benchmark/commands/status.py). Fast: nothing is trained."""

from types import SimpleNamespace

import pytest

from benchmark.commands.status import gpu_hours_left
from benchmark.store.layout import Store


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
