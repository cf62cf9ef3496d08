"""ResNeXt-29 for CIFAR, the template of the ResNeXt paper (Xie et al. 2017, Sec. 5.3).

3x3 stem of 64 channels, three stages of three bottleneck blocks (29 = 9*3 + 2) with outputs
256/512/1024; the grouped 3x3 conv of stage s is C * base_width * 2^s wide with C groups.
"""

import torch
from torch import nn
from torch.nn import functional as F

from .common import Features, init_conv_bn, pooled


class Bottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, cardinality: int, width: int):
        super().__init__()
        self.conv_reduce = nn.Conv2d(cin, width, 1, bias=False)
        self.bn_reduce = nn.BatchNorm2d(width)
        self.conv_conv = nn.Conv2d(width, width, 3, stride, 1, groups=cardinality, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.conv_expand = nn.Conv2d(width, cout, 1, bias=False)
        self.bn_expand = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn_reduce(self.conv_reduce(x)))
        out = F.relu(self.bn(self.conv_conv(out)))
        out = self.bn_expand(self.conv_expand(out))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class CifarResNeXt(nn.Module):
    classifier_name = "classifier"

    def __init__(self, cardinality: int, base_width: int, num_classes: int, depth: int = 29):
        super().__init__()
        if (depth - 2) % 9:
            raise ValueError(f"ResNeXt depth must be 9n+2, got {depth}")
        n = (depth - 2) // 9
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for s, cout in enumerate((256, 512, 1024)):
            width = cardinality * base_width * 2**s
            stride = 1 if s == 0 else 2
            blocks = [Bottleneck(cin if i == 0 else cout, cout, stride if i == 0 else 1, cardinality, width)
                      for i in range(n)]
            self.add_module(f"stage{s + 1}", nn.Sequential(*blocks))
            cin = cout
        self.classifier = nn.Linear(cin, num_classes)
        init_conv_bn(self)
        nn.init.zeros_(self.classifier.bias)

    def extract(self, x: torch.Tensor) -> Features:
        x = F.relu(self.bn1(self.conv1(x)))
        stages = []
        for stage in (self.stage1, self.stage2, self.stage3):
            x = stage(x)
            stages.append(x)
        feat = pooled(x)
        return {"logits": self.classifier(feat), "penultimate": feat, "stages": stages}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extract(x)["logits"]
