"""The model registry: every network the benchmark trains, by name.

Each built model maps images (speech models: MFCCs [N, 1, 101, 40]) to logits and has ``extract(x)`` returning
``{"logits", "penultimate", "stages"}`` (see ``common.Features``) plus a ``classifier_name``
naming its final linear layer.
"""

import re
from functools import partial
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .cifar_resnet import cifar_resnet, cifar_resnet_x4
from .cifar_resnet50 import CifarResNet50
from .imagenet import TORCHVISION, AlexNetSmall, torchvision_model, wrn_26_2
from .mobilenetv2 import MobileNetV2
from .resnext import CifarResNeXt
from .shufflenetv1 import ShuffleNetV1
from .shufflenetv2 import ShuffleNetV2
from .speech import DSCNN, INPUT_SHAPE, ResNet15
from .vgg import CONFIGS as VGG_CONFIGS
from .vgg import vgg
from .weights import load_weights
from .wrn import WideResNet

__all__ = ["build_model", "model_names", "model_info", "count_params", "describe_models"]

Builder = Callable[[int], nn.Module]  # num_classes -> model

CIFAR_SIZE, IMAGENET_SIZE = 32, 224

_CIFAR: dict[str, Builder] = {
    **{f"resnet{d}": partial(cifar_resnet, d) for d in (8, 14, 20, 32, 44, 56, 110)},
    **{f"resnet{d}x4": partial(cifar_resnet_x4, d) for d in (8, 32)},
    "resnet50_cifar": CifarResNet50,  # RepDistiller's "ResNet50" ("resnet50" is torchvision's)
    **{f"wrn_{d}_{k}": partial(WideResNet, d, k)
       for d, ks in ((16, range(1, 7)), (28, (1, 2, 3, 4, 6, 8)), (40, (1, 2, 6))) for k in ks},
    **{name: partial(vgg, name) for name in VGG_CONFIGS},
    "shufflev1": ShuffleNetV1,
    "shufflev2": ShuffleNetV2,
    "mobilenetv2": MobileNetV2,
    **{f"resnext29_{c}x4d": partial(CifarResNeXt, c, 4) for c in (4, 8, 16, 24, 32, 64)},
}

_IMAGENET: dict[str, Builder] = {
    **{name: partial(torchvision_model, builder, cls) for name, (builder, cls) in TORCHVISION.items()},
    "alexnet_small": AlexNetSmall,
    "wrn_26_2": wrn_26_2,
}

# Keyword spotting on MFCC inputs (ATS App. C.2): model_info gives their input shape.
_SPEECH: dict[str, Builder] = {"resnet15_128": ResNet15, "dscnn": DSCNN}

# Any CIFAR WRN depth/width is buildable; only the ones above are listed.
_WRN = re.compile(r"wrn_(\d+)_(\d+)")


def _lookup(name: str) -> tuple[Builder, str, int]:
    if name in _CIFAR:
        return _CIFAR[name], "cifar", CIFAR_SIZE
    if name in _IMAGENET:
        return _IMAGENET[name], "imagenet", IMAGENET_SIZE
    if name in _SPEECH:
        return _SPEECH[name], "speech", INPUT_SHAPE[1]
    if m := _WRN.fullmatch(name):
        depth, widen = int(m[1]), int(m[2])
        if depth < 10 or (depth - 4) % 6 or widen < 1:
            raise ValueError(f"invalid model '{name}': WRN depth must be 6n+4 (n >= 1), width >= 1")
        return partial(WideResNet, depth, widen), "cifar", CIFAR_SIZE
    raise ValueError(f"unknown model '{name}'")


def build_model(name: str, num_classes: int, weights: str | Path | None = None) -> nn.Module:
    """Build ``name`` with a ``num_classes``-way classifier, optionally loading a local state dict.

    Unknown names, and a ``wrn_<d>_<k>`` whose depth is not 6n+4, raise ValueError.
    """
    builder, _, _ = _lookup(name)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    model = builder(num_classes)
    if weights is not None:
        load_weights(model, weights)
    return model


def model_names() -> list[str]:
    return sorted([*_CIFAR, *_IMAGENET, *_SPEECH])


def model_info(name: str) -> dict:
    """{"name", "family": "cifar" | "imagenet" | "speech", "input_size"}; input_size is the nominal
    side; speech models add "input_shape" (channels, frames, coefficients): they take no images.

    ImageNet-family models pool adaptively and also run on smaller inputs (64x64 TinyImageNet).
    """
    _, family, size = _lookup(name)
    info = {"name": name, "family": family, "input_size": size}
    return {**info, "input_shape": INPUT_SHAPE} if family == "speech" else info


def count_params(model: nn.Module) -> int:
    """All parameters, trainable or frozen; buffers (BN statistics) are not counted."""
    return sum(p.numel() for p in model.parameters())


def describe_models(num_classes: int) -> list[dict]:
    """One row per registered model, built on the meta device: no memory, no init cost."""
    rows = []
    for name in model_names():
        with torch.device("meta"):
            model = build_model(name, num_classes)
        rows.append({"name": name, "params": count_params(model), "num_classes": num_classes,
                     **{k: v for k, v in model_info(name).items() if k != "name"}})
    return rows
