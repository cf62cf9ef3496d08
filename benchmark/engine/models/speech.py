"""Keyword-spotting networks of ATS App. C.2 on MFCC inputs [N, 1, 101, 40] (Google Speech Commands).

``resnet15_128``: the residual network of Tang & Lin, "Deep residual learning for small-footprint
keyword spotting" (ICASSP 2018; [41] of ATS), its res15 with the channels raised to 128 ("We modify
the number of layer as 15 and the channel as 128", App. C.2). res15: a 3x3 convolution, then six
residual blocks of two 3x3 convolutions (13 after the first) whose dilation grows as 2^floor(i/3)
for the i-th (0-based) of them, so that the receptive field covers the whole input without
pooling; each convolution is followed by a ReLU and a BatchNorm without affine parameters (the
first convolution by the ReLU only), the block's input is added before its second BatchNorm;
global average pooling and one linear layer. No convolution has a bias. Parameters at 35 classes:
9 x 128 + 13 x 9 x 128^2 + 128 x 35 + 35 = 1,922,595 (ATS Table 5: 1.9M).

``dscnn``: the depthwise-separable CNN of Zhang et al., "Hello Edge: keyword spotting on
microcontrollers" (2017; [60] of ATS) with 96 channels ("We set the basic number of channels as 96",
App. C.2), in Hello Edge's large layout: a 10x4 convolution with stride (2, 1) in (time,
frequency), then five depthwise-separable blocks (3x3 depthwise, BatchNorm, ReLU, 1x1 pointwise,
BatchNorm, ReLU; the first block with stride 2), padding as TensorFlow's "SAME", global average
pooling and a linear layer. Parameters at 35 classes: 59,843 (ATS Table 5: 59.8K) with a bias on
the first convolution only and affine BatchNorms -- the reading that gives the printed count
(without that bias: 59,747, "59.7K").
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .common import Features, pooled

INPUT_SHAPE = (1, 101, 40)  # (channels, MFCC frames, MFCC coefficients)


class ResNet15(nn.Module):
    classifier_name = "output"

    def __init__(self, num_classes: int, maps: int = 128, layers: int = 13):
        super().__init__()
        self.conv0 = nn.Conv2d(1, maps, 3, padding=1, bias=False)
        self.convs = nn.ModuleList(
            nn.Conv2d(maps, maps, 3, padding=2 ** (i // 3), dilation=2 ** (i // 3), bias=False) for i in range(layers))
        self.bns = nn.ModuleList(nn.BatchNorm2d(maps, affine=False) for _ in range(layers))
        self.output = nn.Linear(maps, num_classes)

    def extract(self, x: torch.Tensor) -> Features:
        x = residual = F.relu(self.conv0(x))
        stages = []
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns), start=1):
            y = F.relu(conv(x))
            if i % 2 == 0:  # the second convolution of a block: add the block's input (before BN)
                y = residual = y + residual
            x = bn(y)
            if i in (4, 8, len(self.convs)):
                stages.append(x)
        feat = pooled(x)
        return {"logits": self.output(feat), "penultimate": feat, "stages": stages}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extract(x)["logits"]


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "SAME": output ceil(size / stride), the odd padding pixel at the end."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SamePadConv(nn.Conv2d):
    """A convolution padded as TensorFlow's "SAME" for whatever input size it gets."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        top, bottom = _same_pad(x.shape[-2], kh, sh)
        left, right = _same_pad(x.shape[-1], kw, sw)
        return super().forward(F.pad(x, (left, right, top, bottom)))


def _bn_relu(conv: nn.Conv2d) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(conv.out_channels), nn.ReLU(inplace=True))


class DSCNN(nn.Module):
    classifier_name = "fc"

    def __init__(self, num_classes: int, channels: int = 96, blocks: int = 5):
        super().__init__()
        self.conv1 = _bn_relu(SamePadConv(1, channels, (10, 4), stride=(2, 1)))
        self.blocks = nn.ModuleList(
            nn.Sequential(_bn_relu(SamePadConv(channels, channels, 3, stride=2 if i == 0 else 1, groups=channels,
                                               bias=False)),
                          _bn_relu(nn.Conv2d(channels, channels, 1, bias=False)))
            for i in range(blocks))
        self.fc = nn.Linear(channels, num_classes)

    def extract(self, x: torch.Tensor) -> Features:
        x = self.conv1(x)
        stages = []
        for block in self.blocks:
            x = block(x)
            stages.append(x)
        feat = pooled(x)
        return {"logits": self.fc(feat), "penultimate": feat, "stages": stages}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extract(x)["logits"]
