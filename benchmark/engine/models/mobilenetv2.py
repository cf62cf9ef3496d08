"""MobileNetV2 for CIFAR, RepDistiller's half-width "mobile_half" (expansion 6, width 0.5).

Differences from torchvision's ImageNet MobileNetV2, kept because the papers used this one:
ReLU instead of ReLU6, an expansion 1x1 conv even in the t=1 block, the second setting at
stride 1 (so 32x32 inputs end at 2x2), and a 1280-channel last conv whatever the width.
"""

import torch
from torch import nn

from .common import Features, init_conv_bn, pooled

# (expansion t, output channels c, repeats n, first stride s); t=None means "use the net's t".
SETTINGS = [(1, 16, 1, 1), (None, 24, 2, 1), (None, 32, 3, 2), (None, 64, 4, 2),
            (None, 96, 3, 1), (None, 160, 3, 2), (None, 320, 1, 1)]


def _conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, t: int):
        super().__init__()
        hidden = cin * t
        self.use_residual = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            # Linear bottleneck: no activation after the projection.
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV2(nn.Module):
    classifier_name = "classifier.0"
    # RepDistiller's get_feat_modules (models/mobilenetv2.py l. 126-130): the last 1x1 conv is
    # left out of AB's and FSP's pre-training stage.
    feat_module_names = ("conv1", "blocks")

    def __init__(self, num_classes: int, t: int = 6, width: float = 0.5, last: int = 1280):
        super().__init__()
        cin = int(32 * width)
        self.conv1 = _conv_bn_relu(3, cin, 3, stride=2)
        groups = []
        for t_i, c, n, s in SETTINGS:
            cout = int(c * width)
            units = []
            for i in range(n):
                units.append(InvertedResidual(cin, cout, s if i == 0 else 1, t if t_i is None else t_i))
                cin = cout
            groups.append(nn.Sequential(*units))
        self.blocks = nn.ModuleList(groups)
        self.conv2 = _conv_bn_relu(cin, last, 1)
        self.classifier = nn.Sequential(nn.Linear(last, num_classes))
        init_conv_bn(self)
        nn.init.normal_(self.classifier[0].weight, 0, 0.01)
        nn.init.zeros_(self.classifier[0].bias)

    def extract(self, x: torch.Tensor) -> Features:
        x = stem = self.conv1(x)
        stages = []
        for group in self.blocks:
            x = group(x)
            stages.append(x)
        feat = pooled(self.conv2(x))
        # RepDistiller's feature list (models/mobilenetv2.py l. 132-158): the stem, then the outputs
        # of blocks 1, 2, 4 and 6 (0-based; blocks 0, 3 and 5 are not tapped). preact=True gives
        # the same list there: a block ends in its linear bottleneck (BN, no ReLU).
        taps = [stem, stages[1], stages[2], stages[4], stages[6]]
        return {"logits": self.classifier(feat), "penultimate": feat, "stages": stages, "taps": taps,
                "preact_taps": list(taps)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extract(x)["logits"]
