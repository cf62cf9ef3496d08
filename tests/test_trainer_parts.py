"""The trainer's parts on their own: checkpoint unwrapping, a run's random stream, the
pre-training stages' progress as the checkpoint holds it."""

import pytest
import torch

from benchmark.engine.distillers.base import PretrainStage
from benchmark.engine.models.weights import unwrap_state_dict
from benchmark.engine.pretraining import PretrainProgress
from benchmark.engine.run_rng import RunRandom


def test_unwrapping_finds_the_weights_and_strictness_decides_about_the_rest():
    w = torch.ones(2)
    for layout in ({"module.fc.weight": w}, {"state_dict": {"module.fc.weight": w}, "epoch": 3},
                   {"model": {"fc.weight": w}, "opt": object()}):
        for strict in (True, False):
            assert unwrap_state_dict(layout, strict=strict).keys() == {"fc.weight"}
    mixed = {"fc.weight": w, "best_acc": 71.5}
    assert unwrap_state_dict(mixed, strict=False) == {"fc.weight": w}
    with pytest.raises(ValueError, match="f.pth: not a state dict"):
        unwrap_state_dict(mixed, strict=True, source="f.pth")
    for strict in (True, False):
        with pytest.raises(ValueError, match="not a state dict"):
            unwrap_state_dict([w], strict=strict)


def test_a_run_draws_from_its_own_stream_and_leaves_the_global_one_alone():
    cpu = torch.device("cpu")
    run = RunRandom.fresh(7, cpu)
    torch.manual_seed(0)
    with run.own():
        a = torch.rand(3)
    outside = torch.rand(3)
    with run.own():
        b = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(outside, torch.rand(3))  # the global stream did not move
    again = RunRandom.fresh(7, cpu)
    with again.own():
        assert torch.equal(torch.rand(6), torch.cat([a, b]))  # two blocks continue one stream


def test_stage_progress_round_trips_through_the_checkpoint():
    assert PretrainProgress([]).state_dict() == {} and PretrainProgress([]).summary() == {}
    stages = [PretrainStage("a", 2, 0.1, [], lambda *_: None), PretrainStage("b", 1, 0.01, [], lambda *_: None)]
    done = PretrainProgress(stages)
    assert done.schedule == [(0, 0), (0, 1), (1, 0)] and done.pending
    done.done, done.history, done.optimizer_state = 1, [{"stage": "a", "epoch": 1}], {"state": {}}
    back = PretrainProgress(stages)
    back.load_state_dict({"epoch": -1, **done.state_dict()})
    assert (back.done, back.history, back.optimizer_state, back.resumed_from) == (1, done.history, {"state": {}}, 1)
    back.done = 3
    assert not back.pending
    later = PretrainProgress(stages)
    later.load_state_dict({"epoch": 4, "init_done": 3})  # in the main training: the stages are behind it
    assert not later.pending and later.resumed_from is None
