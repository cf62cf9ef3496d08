"""The model registry: every network the benchmark trains, by name.

Each built model maps images (speech models: MFCCs [N, 1, 101, 40]) to logits and has ``extract(x)`` returning
``{"logits", "penultimate", "stages"}`` (see ``common.Features``) plus a ``classifier_name``
naming its final linear layer.

The names, families and input sizes are known without torch (config checks and planning read
them); a network's module, and torch, are imported when it is built.
"""

from __future__ import annotations

import importlib
import re
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from torch import nn

__all__ = ["build_model", "model_names", "model_info", "count_params", "describe_models"]

Builder = Callable[[int], "nn.Module"]  # num_classes -> model

CIFAR_SIZE, IMAGENET_SIZE = 32, 224

# The VGGs of vgg.CONFIGS and torchvision's networks of imagenet.TORCHVISION, named here so that
# the names need no torch (tests/test_models.py checks both lists against those dicts).
VGG_NAMES = ("vgg8", "vgg11", "vgg13")
TORCHVISION_NAMES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2",
                     "resnext50_32x4d", "resnext101_32x8d", "alexnet", "shufflenet_v2_x1_0", "mobilenet_v2",
                     "efficientnet_b0", "convnext_tiny")

# name -> (module of this package, its builder, the builder's arguments before num_classes)
_CIFAR: dict[str, tuple[str, str, tuple]] = {
    **{f"resnet{d}": ("cifar_resnet", "cifar_resnet", (d,)) for d in (8, 14, 20, 32, 44, 56, 110)},
    **{f"resnet{d}x4": ("cifar_resnet", "cifar_resnet_x4", (d,)) for d in (8, 32)},
    "resnet50_cifar": ("cifar_resnet50", "CifarResNet50", ()),  # RepDistiller's "ResNet50" ("resnet50" is torchvision's)
    **{f"wrn_{d}_{k}": ("wrn", "WideResNet", (d, k))
       for d, ks in ((16, range(1, 7)), (28, (1, 2, 3, 4, 6, 8)), (40, (1, 2, 6))) for k in ks},
    **{name: ("vgg", "vgg", (name,)) for name in VGG_NAMES},
    "shufflev1": ("shufflenetv1", "ShuffleNetV1", ()),
    "shufflev2": ("shufflenetv2", "ShuffleNetV2", ()),
    "mobilenetv2": ("mobilenetv2", "MobileNetV2", ()),
    **{f"resnext29_{c}x4d": ("resnext", "CifarResNeXt", (c, 4)) for c in (4, 8, 16, 24, 32, 64)},
}

_IMAGENET: dict[str, tuple[str, str, tuple]] = {
    **{name: ("imagenet", "torchvision_model", (name,)) for name in TORCHVISION_NAMES},
    "alexnet_small": ("imagenet", "AlexNetSmall", ()),
    "wrn_26_2": ("imagenet", "wrn_26_2", ()),
}

# Keyword spotting on MFCC inputs (ATS App. C.2): model_info gives their input shape, speech.py's
# INPUT_SHAPE (named here so that it needs no torch; tests/test_models.py checks the two agree).
_SPEECH: dict[str, tuple[str, str, tuple]] = {"resnet15_128": ("speech", "ResNet15", ()),
                                              "dscnn": ("speech", "DSCNN", ())}
SPEECH_INPUT_SHAPE = (1, 101, 40)  # (channels, MFCC frames, MFCC coefficients)

# Any CIFAR WRN depth/width is buildable; only the ones above are listed.
_WRN = re.compile(r"wrn_(\d+)_(\d+)")


def _entry(name: str) -> tuple[tuple[str, str, tuple], str, int]:
    if name in _CIFAR:
        return _CIFAR[name], "cifar", CIFAR_SIZE
    if name in _IMAGENET:
        return _IMAGENET[name], "imagenet", IMAGENET_SIZE
    if name in _SPEECH:
        return _SPEECH[name], "speech", SPEECH_INPUT_SHAPE[1]
    if m := _WRN.fullmatch(name):
        depth, widen = int(m[1]), int(m[2])
        if depth < 10 or (depth - 4) % 6 or widen < 1:
            raise ValueError(f"invalid model '{name}': WRN depth must be 6n+4 (n >= 1), width >= 1")
        return ("wrn", "WideResNet", (depth, widen)), "cifar", CIFAR_SIZE
    raise ValueError(f"unknown model '{name}'")


def _lookup(name: str) -> tuple[Builder, str, int]:
    """The builder (importing its module, and torch), the family and the nominal input side."""
    (module, attr, args), family, size = _entry(name)
    code = importlib.import_module(f".{module}", __name__)
    if attr == "torchvision_model":  # torchvision's own builder and the class that adds extract()
        return partial(code.torchvision_model, *code.TORCHVISION[args[0]]), family, size
    return partial(getattr(code, attr), *args), family, size


def build_model(name: str, num_classes: int, weights: str | Path | None = None) -> nn.Module:
    """Build ``name`` with a ``num_classes``-way classifier, optionally loading a local state dict.

    Unknown names, and a ``wrn_<d>_<k>`` whose depth is not 6n+4, raise ValueError.
    """
    builder, _, _ = _lookup(name)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    model = builder(num_classes)
    if weights is not None:
        from .weights import load_weights

        load_weights(model, weights)
    return model


def model_names() -> list[str]:
    return sorted([*_CIFAR, *_IMAGENET, *_SPEECH])


def model_info(name: str) -> dict:
    """{"name", "family": "cifar" | "imagenet" | "speech", "input_size"}; input_size is the nominal
    side; speech models add "input_shape" (channels, frames, coefficients): they take no images.

    ImageNet-family models pool adaptively and also run on smaller inputs (64x64 TinyImageNet).
    """
    _, family, size = _entry(name)
    info = {"name": name, "family": family, "input_size": size}
    # a list: describe_models' rows are cached as JSON and must read back equal
    return {**info, "input_shape": list(SPEECH_INPUT_SHAPE)} if family == "speech" else info


def count_params(model: nn.Module) -> int:
    """All parameters, trainable or frozen; buffers (BN statistics) are not counted."""
    return sum(p.numel() for p in model.parameters())


def describe_models(num_classes: int) -> list[dict]:
    """One row per registered model, built on the meta device: no memory, no init cost."""
    import torch

    rows = []
    for name in model_names():
        with torch.device("meta"):
            model = build_model(name, num_classes)
        rows.append({"name": name, "params": count_params(model), "num_classes": num_classes,
                     **{k: v for k, v in model_info(name).items() if k != "name"}})
    return rows
