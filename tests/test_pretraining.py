"""The initialisation stages before the main training (benchmark/engine/pretraining.py)."""


from benchmark.engine.distillers.base import PretrainStage
from benchmark.engine.pretraining import PretrainProgress


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
