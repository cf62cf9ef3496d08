"""What the model families share (benchmark/engine/models/common.py): the pooled vector, the stages'
maps with their pre-activations, the zoo's initialisation."""

import torch
from torch import nn

from benchmark.engine.models.common import init_conv_bn, pooled, stage_maps


class Block(nn.Module):
    """x - 1, with a preact that is the output before a ReLU (as the zoo's blocks have)."""

    def preact(self, x):
        return x - 1


def test_pooled_is_the_spatial_mean():
    x = torch.arange(8.0).view(1, 2, 2, 2)
    assert pooled(x).tolist() == [[1.5, 5.5]]


def test_stage_maps_are_relu_of_each_stages_last_preact():
    x = torch.tensor([[[[0.5, 3.0]]]])
    stages = [nn.Sequential(nn.Identity(), Block()), nn.Sequential(Block())]
    out, maps, pre = stage_maps(x, stages)
    # stage 1: preact x - 1 = [-0.5, 2], relu [0, 2]; stage 2: preact [-1, 1], relu [0, 1]
    assert [p.flatten().tolist() for p in pre] == [[-0.5, 2.0], [-1.0, 1.0]]
    assert [m.flatten().tolist() for m in maps] == [[0.0, 2.0], [0.0, 1.0]] and torch.equal(out, maps[-1])


def test_init_is_he_fan_out_for_convs_and_identity_bn():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(16, 64, 3, bias=True), nn.BatchNorm2d(64))
    nn.init.constant_(net[1].weight, 3.0)
    init_conv_bn(net)
    assert torch.equal(net[0].bias, torch.zeros(64))
    assert torch.equal(net[1].weight, torch.ones(64)) and torch.equal(net[1].bias, torch.zeros(64))
    std = (2 / (64 * 9)) ** 0.5  # kaiming normal, fan_out = out channels x kernel area, gain sqrt(2)
    assert abs(net[0].weight.std().item() - std) < 0.05 * std
