"""CIFAR ResNeXt (benchmark/engine/models/resnext.py): the grouped bottleneck counted by hand."""

import torch

from benchmark.engine.models import count_params
from benchmark.engine.models.resnext import Bottleneck


def test_a_grouped_bottleneck_by_hand():
    # reduce 1x1 64 -> 32, grouped 3x3 in 4 groups (32 x 32 / 4 weights per position), expand 1x1 32 -> 128,
    # a BN after each, and a 1x1 conv + BN shortcut (64 != 128)
    block = Bottleneck(64, 128, 1, cardinality=4, width=32)
    assert block.conv_conv.groups == 4
    assert count_params(block) == 64 * 32 + 2 * 32 + 9 * 32 * 32 // 4 + 2 * 32 + 32 * 128 + 2 * 128 + 64 * 128 + 2 * 128
    assert Bottleneck(128, 128, 1, 4, 32).shortcut is None
    with torch.no_grad():
        assert Bottleneck(64, 128, 2, 4, 32).eval()(torch.randn(1, 64, 8, 8)).shape == (1, 128, 4, 4)
