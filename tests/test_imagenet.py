"""The torchvision-based networks (benchmark/engine/models/imagenet.py): AlexNet at small sizes with
torchvision's features, WRN-26-2's layout."""

import torch
from torch import nn
from torchvision import models as tvm

from benchmark.engine.models import build_model
from benchmark.engine.models.imagenet import TORCHVISION


def test_alexnet_small_sizes_and_torchvision_features():
    model = build_model("alexnet_small", 200).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 224, 224)).shape == (2, 200)
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 200)
    with torch.device("meta"):
        reference = tvm.alexnet(num_classes=200).features.state_dict()
    ours = model.features.state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in reference.items()}


def test_wrn_26_2_layout_and_small_input():
    model = build_model("wrn_26_2", 200).eval()
    # Depth counts weight layers on the main path, not the 1x1 projection shortcuts.
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and "downsample" not in n]
    assert len(convs) + 1 == 26  # 8 bottlenecks x 3 convs + stem conv + fc
    assert model.layer1[0].conv2.out_channels == 128  # wide: width_per_group 128, as WRN50-2
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 200)


def test_every_torchvision_name_builds_its_class_of_the_module():
    from benchmark.engine.models import imagenet

    assert {"resnet50", "wide_resnet50_2", "mobilenet_v2", "shufflenet_v2_x1_0"} <= set(TORCHVISION)
    with torch.device("meta"):
        assert isinstance(build_model("resnet50", 10), imagenet.ResNet)
        assert isinstance(build_model("mobilenet_v2", 10), imagenet.MobileNetV2)
