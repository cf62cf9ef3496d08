"""VGG with BatchNorm for CIFAR, in the RepDistiller layout (five conv blocks, one final linear)."""

import torch
from torch import nn
from torch.nn import functional as F

from .common import Features, init_conv_bn, pooled

# Output channels of the convs in each of the five blocks.
CONFIGS = {
    "vgg8": [[64], [128], [256], [512], [512]],
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
}


def _block(cin: int, widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Conv2d(cin, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
        cin = w
    # The block ends before its last ReLU (applied in extract), keeping RepDistiller's indices.
    return nn.Sequential(*layers[:-1])


class VGG(nn.Module):
    classifier_name = "classifier"

    def __init__(self, config: list[list[int]], num_classes: int):
        super().__init__()
        cin = 3
        for i, widths in enumerate(config):
            self.add_module(f"block{i}", _block(cin, widths))
            cin = widths[-1]
        self.classifier = nn.Linear(cin, num_classes)
        init_conv_bn(self)
        nn.init.normal_(self.classifier.weight, 0, 0.01)
        nn.init.zeros_(self.classifier.bias)

    def extract(self, x: torch.Tensor) -> Features:
        stages, pre = [], []
        for i in range(5):
            pre.append(getattr(self, f"block{i}")(x))
            x = F.relu(pre[-1])
            stages.append(x)
            # Halve after blocks 0-2, and after block 3 only while the map is still above 4x4:
            # at 32x32 the last two blocks both run at 4x4, as in RepDistiller (which pools
            # there only for 64x64 inputs).
            if i < 3 or (i == 3 and x.shape[-1] > 4):
                x = F.max_pool2d(x, 2)
        feat = pooled(x)
        # RepDistiller's VGG feature list is [f0, f1, f2, f3, f4, pooled] (models/vgg.py): block0
        # plays the stem; at 32 px block3's and block4's maps are both 4x4.
        taps = stages
        preact_taps = [stages[0], *pre[1:]]  # RepDistiller keeps f0 after its ReLU
        return {"logits": self.classifier(feat), "penultimate": feat, "stages": stages, "taps": taps,
                "preact_taps": preact_taps}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extract(x)["logits"]


def vgg(name: str, num_classes: int) -> VGG:
    return VGG(CONFIGS[name], num_classes)
