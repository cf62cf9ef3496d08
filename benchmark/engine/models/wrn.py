"""Wide ResNets for CIFAR (Zagoruyko & Komodakis 2016), pre-activation, RepDistiller layout.

WRN-d-k has (d-4)/6 blocks per stage and widths [16, 16k, 32k, 64k]. Parameter names follow
RepDistiller (``block1.layer.0.convShortcut`` ...) so its teacher checkpoints load unchanged.
"""

import torch
from torch import nn
from torch.nn import functional as F

from .common import Features, init_conv_bn, pooled


class WideBasic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.convShortcut = None
        if stride != 1 or cin != cout:
            self.convShortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor, normed: torch.Tensor | None = None) -> torch.Tensor:
        """``normed``: bn1(x) if the caller computed it already (extract's pre-activation tap)."""
        act = F.relu(self.bn1(x) if normed is None else normed)
        # A projecting shortcut reads the activated input (as in the reference WRN); identity reads x.
        shortcut = x if self.convShortcut is None else self.convShortcut(act)
        out = self.conv2(F.relu(self.bn2(self.conv1(act))))
        return out + shortcut


class WideStage(nn.Module):
    """A group of blocks; a wrapper only so parameter names carry RepDistiller's ``.layer.``."""

    def __init__(self, cin: int, cout: int, n: int, stride: int):
        super().__init__()
        self.layer = nn.Sequential(
            *[WideBasic(cin if i == 0 else cout, cout, stride if i == 0 else 1) for i in range(n)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    classifier_name = "fc"
    # RepDistiller's get_feat_modules (models/wrn.py l. 88-94), what AB's and FSP's pre-training
    # stage trains: the final bn1 is left out (untrained and in eval mode during the stage).
    feat_module_names = ("conv1", "block1", "block2", "block3")

    def __init__(self, depth: int, widen: int, num_classes: int):
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"WRN depth must satisfy (d-4) % 6 == 0 with d >= 10, got {depth}")
        if widen < 1:
            raise ValueError(f"WRN widen factor must be >= 1, got {widen}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.block1 = WideStage(widths[0], widths[1], n, 1)
        self.block2 = WideStage(widths[1], widths[2], n, 2)
        self.block3 = WideStage(widths[2], widths[3], n, 2)
        # Pre-activation blocks leave their output un-normalised: one BN+ReLU before pooling.
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        init_conv_bn(self)
        nn.init.zeros_(self.fc.bias)

    def extract(self, x: torch.Tensor) -> Features:
        x = self.conv1(x)
        stem, stages = x, [self.block1(x)]
        # RepDistiller's preact list applies the next BN to each stage output (block2's and
        # block3's first bn1, then the final bn1): the values the next layer reads before its ReLU.
        # They are computed once here and handed on, so BatchNorm statistics move once per batch
        # (RepDistiller, l. 118-121, applies these BNs a second time when preact=True: in train
        # mode their running statistics then move twice per batch; see distillers/ab.py).
        pre = [self.block2.layer[0].bn1(stages[0])]
        stages.append(self.block2.layer[1:](self.block2.layer[0](stages[0], normed=pre[0])))
        pre.append(self.block3.layer[0].bn1(stages[1]))
        stages.append(self.block3.layer[1:](self.block3.layer[0](stages[1], normed=pre[1])))
        pre.append(self.bn1(stages[2]))
        feat = pooled(F.relu(pre[2]))
        # RepDistiller's WRN feature list is [conv1 output, block1, block2, block3] (pre-BN).
        return {"logits": self.fc(feat), "penultimate": feat, "stages": stages, "taps": [stem, *stages],
                "preact_taps": [stem, *pre]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extract(x)["logits"]
