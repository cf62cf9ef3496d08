"""CIFAR ResNets (He et al. 2016, "6n+2" layers) in the RepDistiller layout.

Post-activation basic blocks and a 1x1 conv + BN shortcut wherever the shape changes.
Parameter names follow RepDistiller so its released teacher checkpoints load unchanged.
"""

import torch
from torch import nn
from torch.nn import functional as F

from .common import Features, init_conv_bn, pooled, stage_maps


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def preact(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output before its final ReLU (RepDistiller's ``preact`` feature)."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.preact(x))


class CifarResNet(nn.Module):
    """``widths`` = [stem, stage1, stage2, stage3]; stages 2 and 3 halve the resolution."""

    classifier_name = "fc"

    def __init__(self, depth: int, widths: list[int], num_classes: int):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n >= 1, got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        cin = widths[0]
        for i, (cout, stride) in enumerate(zip(widths[1:], (1, 2, 2)), start=1):
            blocks = [BasicBlock(cin if j == 0 else cout, cout, stride if j == 0 else 1) for j in range(n)]
            self.add_module(f"layer{i}", nn.Sequential(*blocks))
            cin = cout
        self.fc = nn.Linear(cin, num_classes)
        init_conv_bn(self)

    def extract(self, x: torch.Tensor) -> Features:
        stem = F.relu(self.bn1(self.conv1(x)))
        x, stages, pre = stage_maps(stem, (self.layer1, self.layer2, self.layer3))
        feat = pooled(x)
        return {"logits": self.fc(feat), "penultimate": feat, "stages": stages, "taps": [stem, *stages],
                "preact_taps": [stem, *pre]}

    def preact_batchnorms(self) -> list[nn.BatchNorm2d]:
        """The BatchNorm feeding each stage's last ReLU, aligned with ``extract()["preact_taps"][1:]``."""
        return [layer[-1].bn2 for layer in (self.layer1, self.layer2, self.layer3)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extract(x)["logits"]


def cifar_resnet(depth: int, num_classes: int) -> CifarResNet:
    return CifarResNet(depth, [16, 16, 32, 64], num_classes)


def cifar_resnet_x4(depth: int, num_classes: int) -> CifarResNet:
    """RepDistiller's resnet8x4 / resnet32x4: the same net with wider [32, 64, 128, 256] channels."""
    return CifarResNet(depth, [32, 64, 128, 256], num_classes)
