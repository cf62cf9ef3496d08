"""MobileNetV2 as in RepDistiller (benchmark/engine/models/mobilenetv2.py): the inverted residual
counted by hand, the residual only where the shape is kept."""

import torch

from benchmark.engine.models import count_params
from benchmark.engine.models.mobilenetv2 import InvertedResidual, MobileNetV2


def test_an_inverted_residual_by_hand():
    # expand 1x1 8 -> 48, depthwise 3x3 on 48, project 1x1 48 -> 8 (no biases), a BN after each
    block = InvertedResidual(8, 8, 1, 6)
    assert count_params(block) == 8 * 48 + 2 * 48 + 9 * 48 + 2 * 48 + 48 * 8 + 2 * 8
    assert block.use_residual and not InvertedResidual(8, 8, 2, 6).use_residual
    assert not InvertedResidual(8, 16, 1, 6).use_residual
    block.eval()
    with torch.no_grad():
        x = torch.randn(1, 8, 6, 6)
        assert torch.allclose(block(x), x + block.conv(x))
        assert InvertedResidual(8, 16, 2, 6).eval()(x).shape == (1, 16, 3, 3)


def test_the_network_classifies_a_cifar_image():
    with torch.no_grad():
        assert MobileNetV2(10).eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)
