"""RepDistiller's CIFAR "ResNet50" (models/resnetv2.py): the ImageNet ResNet-50's bottlenecks
([3, 4, 6, 3] blocks, widths 64/128/256/512, expansion 4) on a CIFAR stem: one 3x3 conv of 64
channels at stride 1, no max-pool, so 32x32 inputs end at 4x4 with 2048 channels.

One of the six teachers RepDistiller releases (scripts/fetch_pretrained_teachers.sh l. 27-29), the
teacher of the CRD benchmark's ResNet50 -> MobileNetV2 / VGG8 pairs. Parameter names follow
RepDistiller (``layer1.0.shortcut.0.weight``, ``linear``) so its checkpoints load unchanged.
Stride on the 3x3 conv (resnetv2.py l. 50), He (fan_out) init of the convs, BN 1/0, zero-init
of the residual BNs off (its default).
"""

import torch
from torch import nn
from torch.nn import functional as F

from .common import Features, init_conv_bn, pooled, stage_maps


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()  # identity; no parameters, as RepDistiller's
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def preact(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output before its final ReLU (RepDistiller's ``preact``, resnetv2.py l. 62-67)."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out)) + self.shortcut(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.preact(x))


class CifarResNet50(nn.Module):
    classifier_name = "linear"

    def __init__(self, num_classes: int, blocks=(3, 4, 6, 3)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, (planes, n, stride) in enumerate(zip((64, 128, 256, 512), blocks, (1, 2, 2, 2)), start=1):
            units = []
            for j in range(n):
                units.append(Bottleneck(cin, planes, stride if j == 0 else 1))
                cin = planes * Bottleneck.expansion
            self.add_module(f"layer{i}", nn.Sequential(*units))
        self.linear = nn.Linear(cin, num_classes)
        init_conv_bn(self)

    def extract(self, x: torch.Tensor) -> Features:
        stem = F.relu(self.bn1(self.conv1(x)))
        x, stages, pre = stage_maps(stem, (self.layer1, self.layer2, self.layer3, self.layer4))
        feat = pooled(x)
        # RepDistiller's feature lists (resnetv2.py l. 141-160): [f0, f1..f4, pooled], and with
        # preact=True the layers' last blocks before their final ReLU.
        return {"logits": self.linear(feat), "penultimate": feat, "stages": stages, "taps": [stem, *stages],
                "preact_taps": [stem, *pre]}

    def preact_batchnorms(self) -> list[nn.BatchNorm2d]:
        """The BatchNorm feeding each stage's last ReLU (RepDistiller's get_bn_before_relu, l. 116-130)."""
        return [layer[-1].bn3 for layer in (self.layer1, self.layer2, self.layer3, self.layer4)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extract(x)["logits"]
