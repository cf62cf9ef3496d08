"""ShuffleNetV2 1.0x for CIFAR (Ma et al. 2018), the RepDistiller "ShuffleV2".

Unlike torchvision's ImageNet version it has a 1x1 stem and no max-pool, so 32x32 inputs keep
their resolution into the first stage.
"""

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.shufflenetv2 import channel_shuffle

from .common import Features, pooled


def _bn_conv(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1):
    return nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)


class SplitUnit(nn.Module):
    """Stride-1 unit: half the channels pass through, the other half go through the branch."""

    def __init__(self, channels: int):
        super().__init__()
        c = channels // 2
        self.conv1, self.bn1 = _bn_conv(c, c)
        self.conv2, self.bn2 = _bn_conv(c, c, 3, groups=c)
        self.conv3, self.bn3 = _bn_conv(c, c)

    def halves(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The passed-through half and the branch's output before its final ReLU."""
        keep, x = x.chunk(2, dim=1)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return keep, self.bn3(self.conv3(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep, out = self.halves(x)
        return channel_shuffle(torch.cat([keep, F.relu(out)], 1), 2)


class DownUnit(nn.Module):
    """Stride-2 unit: both branches see the whole input, each gives half of ``cout``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = cout // 2
        self.conv1, self.bn1 = _bn_conv(cin, cin, 3, 2, groups=cin)  # left branch
        self.conv2, self.bn2 = _bn_conv(cin, mid)
        self.conv3, self.bn3 = _bn_conv(cin, mid)  # right branch
        self.conv4, self.bn4 = _bn_conv(mid, mid, 3, 2, groups=mid)
        self.conv5, self.bn5 = _bn_conv(mid, mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = F.relu(self.bn3(self.conv3(x)))
        right = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(right)))))
        return channel_shuffle(torch.cat([left, right], 1), 2)


class ShuffleNetV2(nn.Module):
    classifier_name = "linear"
    # RepDistiller's get_feat_modules (models/ShuffleNetv2.py l. 128-135): the last 1x1 conv and
    # its BN are left out of AB's and FSP's pre-training stage.
    feat_module_names = ("conv1", "bn1", "layer1", "layer2", "layer3")

    def __init__(self, num_classes: int, widths=(116, 232, 464), repeats=(3, 7, 3), last: int = 1024):
        super().__init__()
        self.conv1, self.bn1 = _bn_conv(3, 24)
        cin = 24
        for i, (width, n) in enumerate(zip(widths, repeats), start=1):
            # One down-sampling unit followed by n split units (RepDistiller's counting).
            units = [DownUnit(cin, width)] + [SplitUnit(width) for _ in range(n)]
            self.add_module(f"layer{i}", nn.Sequential(*units))
            cin = width
        self.conv2, self.bn2 = _bn_conv(cin, last)
        self.linear = nn.Linear(last, num_classes)

    def extract(self, x: torch.Tensor) -> Features:
        x = stem = F.relu(self.bn1(self.conv1(x)))
        stages, pre = [], []
        for layer in (self.layer1, self.layer2, self.layer3):
            keep, out = layer[-1].halves(layer[:-1](x))  # the same ops as layer(x)
            # RepDistiller's preact of a ShuffleV2 layer (models/ShuffleNetv2.py l. 52-56) is
            # cat([kept half, branch before its ReLU]) *without* the channel shuffle the
            # post-activation output gets; kept so, as AB's targets and connectors see it there.
            pre.append(torch.cat([keep, out], 1))
            x = channel_shuffle(torch.cat([keep, F.relu(out)], 1), 2)
            stages.append(x)
        feat = pooled(F.relu(self.bn2(self.conv2(x))))
        # RepDistiller's feature lists (l. 140-159): [stem, layer1-3], preact=True as above.
        return {"logits": self.linear(feat), "penultimate": feat, "stages": stages, "taps": [stem, *stages],
                "preact_taps": [stem, *pre]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extract(x)["logits"]
