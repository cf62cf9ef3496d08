"""RepDistiller's CIFAR ResNet50 (benchmark/engine/models/cifar_resnet50.py)."""

import torch

from benchmark.engine.models import build_model, count_params, model_info
from benchmark.engine.models.cifar_resnet50 import Bottleneck


def meta_params(name: str, num_classes: int) -> int:
    with torch.device("meta"):
        return count_params(build_model(name, num_classes))


def test_repdistiller_cifar_resnet50():
    """RepDistiller's "ResNet50" (models/resnetv2.py l. 75-174) with 100 classes: torchvision's
    resnet50 (25,557,032 parameters at 1000 classes) with a 3x3x3x64 stem instead of 7x7x3x64
    (1,728 for 9,408) and a 2048 x 100 classifier (204,900 for 2,049,000): 23,705,252."""
    assert meta_params("resnet50_cifar", 100) == 25_557_032 - 9_408 + 1_728 - 2_049_000 + 204_900
    assert meta_params("resnet50", 1000) == 25_557_032  # the number the derivation starts from
    m = build_model("resnet50_cifar", 100)
    keys = set(m.state_dict())  # RepDistiller's parameter names, so its released checkpoint loads
    assert {"conv1.weight", "layer1.0.shortcut.0.weight", "layer4.2.bn3.running_var", "linear.weight"} <= keys
    assert not any(k.startswith("layer1.1.shortcut") for k in keys)  # identity shortcuts: no parameters
    assert model_info("resnet50_cifar") == {"name": "resnet50_cifar", "family": "cifar", "input_size": 32}


def test_a_bottleneck_by_hand():
    """1x1 in -> planes, 3x3 planes -> planes, 1x1 planes -> 4 planes, a BN after each; a projecting
    1x1 conv + BN shortcut when the shape changes, none otherwise."""
    project = Bottleneck(64, 64, 1)  # 64 -> 256 channels
    assert count_params(project) == (64 * 64 + 2 * 64) + (9 * 64 * 64 + 2 * 64) + (64 * 256 + 2 * 256) + \
        (64 * 256 + 2 * 256)
    assert count_params(Bottleneck(256, 64, 1)) == (256 * 64 + 2 * 64) + (9 * 64 * 64 + 2 * 64) + (64 * 256 + 2 * 256)
    with torch.no_grad():
        assert Bottleneck(256, 128, 2).eval()(torch.randn(1, 256, 8, 8)).shape == (1, 512, 4, 4)
