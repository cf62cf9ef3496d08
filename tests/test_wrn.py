"""Wide ResNets (benchmark/engine/models/wrn.py): depth 6n+4, any width, a block counted by hand."""

import pytest
import torch

from benchmark.engine.models import build_model, count_params, model_info
from benchmark.engine.models.wrn import WideBasic, WideResNet


@pytest.mark.parametrize("name", ["wrn_27_2", "wrn_6_2", "wrn_28_0"])
def test_wrn_rejects_invalid_depth_or_width(name):
    with pytest.raises(ValueError, match="WRN depth must be 6n\\+4"):
        build_model(name, 10)
    with pytest.raises(ValueError):
        model_info(name)


def test_wrn_any_valid_depth_width():
    model = build_model("wrn_22_3", 7)  # (22-4)/6 = 3 blocks per stage, widths 48/96/192
    assert [len(model.get_submodule(f"block{i}.layer")) for i in (1, 2, 3)] == [3, 3, 3]
    assert model.fc.in_features == 192 and model.fc.out_features == 7


def test_a_block_by_hand():
    """Pre-activation: BN, 3x3 conv, BN, 3x3 conv (no biases); a 1x1 projection only where the shape changes."""
    assert count_params(WideBasic(16, 32, 1)) == 2 * 16 + 9 * 16 * 32 + 2 * 32 + 9 * 32 * 32 + 16 * 32
    same = WideBasic(32, 32, 1)
    assert same.convShortcut is None and count_params(same) == 2 * (2 * 32 + 9 * 32 * 32)
    with torch.no_grad():
        assert WideBasic(16, 32, 2).eval()(torch.randn(1, 16, 8, 8)).shape == (1, 32, 4, 4)
    assert [len(s.layer) for s in (WideResNet(16, 2, 10).block1, WideResNet(40, 1, 10).block3)] == [2, 6]
