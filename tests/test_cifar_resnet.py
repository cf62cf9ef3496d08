"""RepDistiller's CIFAR ResNets (benchmark/engine/models/cifar_resnet.py): blocks and resnet8 counted by
hand (convolutions k x k x in x out without bias, BN weight + bias per channel)."""

import torch

from benchmark.engine.models import count_params
from benchmark.engine.models.cifar_resnet import BasicBlock, cifar_resnet, cifar_resnet_x4


def test_blocks_and_resnet8_by_hand():
    assert count_params(BasicBlock(16, 16, 1)) == 2 * (9 * 16 * 16 + 2 * 16)  # identity shortcut: 4,672
    # 3x3 convs, two BNs, and a 1x1 conv + BN shortcut: 14,528
    assert count_params(BasicBlock(16, 32, 2)) == 9 * 16 * 32 + 9 * 32 * 32 + 2 * 2 * 32 + 16 * 32 + 2 * 32
    stem, head = 9 * 3 * 16 + 2 * 16, 64 * 100 + 100
    layer3 = 9 * 32 * 64 + 9 * 64 * 64 + 2 * 2 * 64 + 32 * 64 + 2 * 64
    assert count_params(cifar_resnet(8, 100)) == stem + 4_672 + 14_528 + layer3 + head == 83_892


def test_preact_is_the_output_before_the_last_relu_and_x4_is_four_times_wider():
    torch.manual_seed(0)
    block = BasicBlock(4, 4, 1).eval()
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        pre = block.preact(x)
        assert (pre < 0).any() and torch.equal(block(x), torch.relu(pre))
    assert cifar_resnet_x4(8, 10).fc.in_features == 4 * cifar_resnet(8, 10).fc.in_features == 256
