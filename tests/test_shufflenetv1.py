"""ShuffleNetV1 as in RepDistiller (benchmark/engine/models/shufflenetv1.py): a stride-2 unit concatenates
a pooled copy of its input, a stride-1 unit adds it; the 24-channel stem is not split into groups."""

import torch

from benchmark.engine.models.shufflenetv1 import ShuffleUnit


def test_units_concatenate_at_stride_2_and_add_at_stride_1():
    torch.manual_seed(0)
    down = ShuffleUnit(24, 216, 2, groups=3).eval()  # 24 + 216 = 240, the first stage's width
    assert (down.groups, down.conv1.groups, down.conv3.groups) == (1, 1, 3)
    x = torch.randn(1, 24, 8, 8)
    with torch.no_grad():
        out = down.preact(x)
        assert out.shape == (1, 240, 4, 4)
        assert torch.equal(out[:, 216:], torch.nn.functional.avg_pool2d(x, 3, 2, 1))
    keep = ShuffleUnit(240, 240, 1, groups=3).eval()
    assert keep.groups == 3 and keep.conv1.groups == 3 and keep.conv2.groups == 60  # depthwise on 240 / 4
    with torch.no_grad():
        y = torch.randn(1, 240, 4, 4)
        assert keep.preact(y).shape == (1, 240, 4, 4) and torch.equal(keep(y), torch.relu(keep.preact(y)))
