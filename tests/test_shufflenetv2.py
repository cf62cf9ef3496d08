"""ShuffleNetV2 (benchmark/engine/models/shufflenetv2.py): a stride-1 unit passes half the channels
through untouched; a stride-2 unit halves the size and gives each branch half of the output."""

import torch

from benchmark.engine.models.shufflenetv2 import DownUnit, SplitUnit


def test_the_split_unit_passes_half_through_and_the_down_unit_halves_the_size():
    torch.manual_seed(0)
    unit = SplitUnit(8).eval()
    x = torch.randn(1, 8, 4, 4)
    with torch.no_grad():
        keep, branch = unit.halves(x)
        assert torch.equal(keep, x[:, :4])
        out = unit(x)
        # channel_shuffle with 2 groups interleaves: even channels are the kept half, odd the branch
        assert torch.equal(out[:, 0::2], x[:, :4]) and torch.equal(out[:, 1::2], torch.relu(branch))
        assert DownUnit(8, 16).eval()(x).shape == (1, 16, 2, 2)
