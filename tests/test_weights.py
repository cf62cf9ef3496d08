"""Loading weights: the state dict unwrapped from a checkpoint's wrappers (benchmark/engine/models/weights.py)."""

import pytest
import torch

from benchmark.engine.models.weights import unwrap_state_dict


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
