"""RepDistiller's CIFAR VGGs (benchmark/engine/models/vgg.py): the widths of each block."""

import pytest
import torch
from torch import nn

from benchmark.engine.models.vgg import CONFIGS, vgg


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_convolutions_are_the_configs_widths(name):
    model = vgg(name, 10)
    widths = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert widths == [w for block in CONFIGS[name] for w in block]
    assert CONFIGS["vgg8"] == [[64], [128], [256], [512], [512]]
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)
