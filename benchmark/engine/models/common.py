"""Pieces shared by the CIFAR model families: the feature-dict type and the weight init."""

from typing import TypedDict

import torch
from torch import nn


class Features(TypedDict):
    """What every model's ``extract(x)`` returns."""

    logits: torch.Tensor  # (N, num_classes)
    penultimate: torch.Tensor  # (N, D), the pooled vector the final classifier reads
    stages: list[torch.Tensor]  # output of each stage / block group, input side first
    # Optional (the RepDistiller-zoo models): RepDistiller's feature list without its pooled
    # vector, i.e. [stem output, the maps its feature methods tap]. Feature distillers
    # (benchmark.engine.distillers) read it; without it they use [None, *stages].
    taps: list[torch.Tensor]
    # Optional, same layout as ``taps``: RepDistiller's ``preact=True`` list, i.e. the stage
    # outputs before their final ReLU (the stem entry stays as in ``taps``; None for torchvision
    # ResNets). AB, ReviewKD and Overhaul read it.
    preact_taps: list[torch.Tensor]


def stage_maps(x: torch.Tensor, layers) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Run ``x`` through residual stages; return the last output, each stage's output and each
    stage's last block before its final ReLU (``block.preact``): the same ops as the stages'
    forward, the last ReLU kept apart so that pre-activation taps cost nothing extra."""
    stages, pre = [], []
    for layer in layers:
        pre.append(layer[-1].preact(layer[:-1](x)))
        x = torch.relu(pre[-1])
        stages.append(x)
    return x, stages, pre


def pooled(x: torch.Tensor) -> torch.Tensor:
    """Global average pool to (N, C).

    Adaptive rather than RepDistiller's fixed 8x8 / 4x4 pools: identical at 32x32 and it
    keeps the models usable at other input sizes.
    """
    return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)


def init_conv_bn(model: nn.Module) -> None:
    """He init (fan_out) for convs and identity BatchNorm: the RepDistiller zoo's init.

    Linear layers keep PyTorch's default unless a family sets its own (as RepDistiller does).
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
