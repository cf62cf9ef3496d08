"""ShuffleNetV1 for CIFAR (Zhang et al. 2018), the RepDistiller "ShuffleV1": g=3, widths 240/480/960."""

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.shufflenetv2 import channel_shuffle

from .common import Features, pooled, stage_maps


class ShuffleUnit(nn.Module):
    """Grouped 1x1 -> shuffle -> depthwise 3x3 -> grouped 1x1.

    A stride-2 unit concatenates an avg-pooled copy of its input instead of adding it, so its
    convs produce only ``cout`` = (stage width - input width) channels.
    """

    def __init__(self, cin: int, cout: int, stride: int, groups: int):
        super().__init__()
        mid = cout // 4
        # The first unit reads the 24-channel stem, too few channels to split into groups.
        g = 1 if cin == 24 else groups
        self.groups = g
        self.stride = stride
        self.conv1 = nn.Conv2d(cin, mid, 1, groups=g, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, cout, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)

    def preact(self, x: torch.Tensor) -> torch.Tensor:
        """The unit's output before its final ReLU (RepDistiller's ``preact``, models/ShuffleNetv1.py l. 47)."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = channel_shuffle(out, self.groups)
        # RepDistiller's ShuffleV1 keeps a ReLU after the depthwise conv (the paper has none).
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.stride == 2:
            return torch.cat([out, F.avg_pool2d(x, 3, 2, 1)], 1)
        return out + x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.preact(x))


class ShuffleNetV1(nn.Module):
    classifier_name = "linear"

    def __init__(self, num_classes: int, widths=(240, 480, 960), repeats=(4, 8, 4), groups: int = 3):
        super().__init__()
        # 1x1 stem and no max-pool: CIFAR images are too small to downsample early.
        self.conv1 = nn.Conv2d(3, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        cin = 24
        for i, (width, n) in enumerate(zip(widths, repeats), start=1):
            units = [ShuffleUnit(cin, width - cin, 2, groups)]
            units += [ShuffleUnit(width, width, 1, groups) for _ in range(n - 1)]
            self.add_module(f"layer{i}", nn.Sequential(*units))
            cin = width
        self.linear = nn.Linear(cin, num_classes)

    def extract(self, x: torch.Tensor) -> Features:
        stem = F.relu(self.bn1(self.conv1(x)))
        x, stages, pre = stage_maps(stem, (self.layer1, self.layer2, self.layer3))
        feat = pooled(x)
        # RepDistiller's feature lists (models/ShuffleNetv1.py l. 95-113): [stem, layer1-3] and,
        # with preact=True, each layer's last unit before its final ReLU.
        return {"logits": self.linear(feat), "penultimate": feat, "stages": stages, "taps": [stem, *stages],
                "preact_taps": [stem, *pre]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extract(x)["logits"]
