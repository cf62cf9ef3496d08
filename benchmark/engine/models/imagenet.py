"""ImageNet-size models: torchvision's, given ``extract()``, plus our AlexNet-small and WRN-26-2.

The torchvision classes are subclassed only to add ``extract()``; the networks and their
parameter names are torchvision's, so torchvision's ImageNet checkpoints load unchanged.
"""

from typing import Callable

import torch
from torch import nn
from torchvision import models as tvm
from torchvision.models.resnet import Bottleneck

from ..detops import AdaptiveAvgPool2d
from .common import Features


def block_preact(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A torchvision BasicBlock's or Bottleneck's output before its final ReLU: the same ops as
    ``block(x)`` with that ReLU left out (Overhaul's pre-ReLU feature)."""
    identity = x if block.downsample is None else block.downsample(x)
    out = block.relu(block.bn1(block.conv1(x)))
    if isinstance(block, Bottleneck):
        out = block.relu(block.bn2(block.conv2(out)))
        out = block.bn3(block.conv3(out))
    else:
        out = block.bn2(block.conv2(out))
    return out + identity


class ResNet(tvm.ResNet):
    classifier_name = "fc"

    def extract(self, x: torch.Tensor) -> Features:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        stages, pre = [], []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            pre.append(block_preact(layer[-1], layer[:-1](x)))
            x = torch.relu(pre[-1])
            stages.append(x)
        feat = torch.flatten(self.avgpool(x), 1)
        return {"logits": self.fc(feat), "penultimate": feat, "stages": stages, "preact_taps": [None, *pre]}

    def preact_batchnorms(self) -> list[nn.BatchNorm2d]:
        """The BatchNorm feeding each stage's last ReLU (the last block's bn3, or bn2 in a
        BasicBlock), aligned with ``extract()["preact_taps"][1:]``: Overhaul's margins come from it."""
        return [layer[-1].bn3 if isinstance(layer[-1], Bottleneck) else layer[-1].bn2
                for layer in (self.layer1, self.layer2, self.layer3, self.layer4)]


class AlexNet(tvm.AlexNet):
    classifier_name = "classifier.6"

    def extract(self, x: torch.Tensor) -> Features:
        stages = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.ReLU):  # one stage per conv layer
                stages.append(x)
        feat = self.classifier[:-1](torch.flatten(self.avgpool(x), 1))
        return {"logits": self.classifier[-1](feat), "penultimate": feat, "stages": stages}


class ShuffleNetV2(tvm.ShuffleNetV2):
    classifier_name = "fc"

    def extract(self, x: torch.Tensor) -> Features:
        x = self.maxpool(self.conv1(x))
        stages = []
        for stage in (self.stage2, self.stage3, self.stage4):
            x = stage(x)
            stages.append(x)
        feat = self.conv5(x).mean([2, 3])
        return {"logits": self.fc(feat), "penultimate": feat, "stages": stages}


class MobileNetV2(tvm.MobileNetV2):
    classifier_name = "classifier.1"
    # torchvision keeps all inverted residuals in one flat Sequential; these are the indices
    # of the last block of each of its seven (t, c, n, s) settings.
    STAGE_ENDS = (1, 3, 6, 10, 13, 16, 17)

    def extract(self, x: torch.Tensor) -> Features:
        stages = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.STAGE_ENDS:
                stages.append(x)
        feat = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return {"logits": self.classifier(feat), "penultimate": feat, "stages": stages}


class EfficientNet(tvm.EfficientNet):
    classifier_name = "classifier.1"

    def extract(self, x: torch.Tensor) -> Features:
        x = self.features[0](x)
        stages = []
        for stage in self.features[1:-1]:  # [0] is the stem, [-1] the 1x1 head conv
            x = stage(x)
            stages.append(x)
        feat = torch.flatten(self.avgpool(self.features[-1](x)), 1)
        return {"logits": self.classifier(feat), "penultimate": feat, "stages": stages}


class ConvNeXt(tvm.ConvNeXt):
    classifier_name = "classifier.2"

    def extract(self, x: torch.Tensor) -> Features:
        stages = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i % 2 == 1:  # features alternate stem/downsample (even) and stage (odd)
                stages.append(x)
        feat = self.classifier[:-1](self.avgpool(x))  # LayerNorm2d + flatten
        return {"logits": self.classifier[-1](feat), "penultimate": feat, "stages": stages}


def torchvision_model(builder: Callable[..., nn.Module], cls: type, num_classes: int) -> nn.Module:
    """Build with torchvision's own builder (its configs, its init), then re-class to add extract().

    Re-classing is safe because each subclass above adds methods only, no state.
    """
    model = builder(weights=None, num_classes=num_classes)
    assert type(model) is cls.__base__, (type(model), cls)
    model.__class__ = cls
    if isinstance(getattr(model, "avgpool", None), nn.AdaptiveAvgPool2d) and model.avgpool.output_size not in (1, (1, 1)):
        # AlexNet's 6x6 pool has no deterministic CUDA backward: the same pool through detops
        model.avgpool = AdaptiveAvgPool2d(model.avgpool.output_size)
    return model


TORCHVISION = {
    "resnet18": (tvm.resnet18, ResNet),
    "resnet34": (tvm.resnet34, ResNet),
    "resnet50": (tvm.resnet50, ResNet),
    "resnet101": (tvm.resnet101, ResNet),
    "resnet152": (tvm.resnet152, ResNet),
    "wide_resnet50_2": (tvm.wide_resnet50_2, ResNet),
    "resnext50_32x4d": (tvm.resnext50_32x4d, ResNet),
    "resnext101_32x8d": (tvm.resnext101_32x8d, ResNet),
    "alexnet": (tvm.alexnet, AlexNet),
    "shufflenet_v2_x1_0": (tvm.shufflenet_v2_x1_0, ShuffleNetV2),
    "mobilenet_v2": (tvm.mobilenet_v2, MobileNetV2),
    "efficientnet_b0": (tvm.efficientnet_b0, EfficientNet),
    "convnext_tiny": (tvm.convnext_tiny, ConvNeXt),
}


class AlexNetSmall(nn.Module):
    """The "AlexNet" of ATS Table 5 (2.7M parameters at 200 classes, 2.6M at 120): our reconstruction.

    The paper says only "AlexNet provided in PyTorch" and gives the count, which rules out
    torchvision's 61M AlexNet; 58.6M of that sits in its three-layer 9216-4096-4096 classifier.
    We keep torchvision's five-conv feature stack unchanged (2.47M parameters, same layer names,
    so ImageNet AlexNet features load for the CUB/Dogs fine-tuning) and reduce only the head:
    adaptive average pool to 2x2 (instead of 6x6) and one dropout + linear 1024 -> classes
    (instead of three linears). That gives 2.67M at 200 classes and 2.59M at 120, matching both
    rounded counts (together they put the classifier input between roughly 900 and 1400).
    Adaptive pooling lets it take 224x224 and 64x64 (TinyImageNet) inputs; at 64x64 the conv
    stack ends at 1x1 and the pool simply repeats that vector.
    """

    classifier_name = "classifier"

    def __init__(self, num_classes: int, dropout: float = 0.5):
        super().__init__()
        # torchvision's AlexNet.features, layer for layer (same indices, so same weight names).
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )
        self.avgpool = AdaptiveAvgPool2d(2)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(256 * 2 * 2, num_classes)

    def extract(self, x: torch.Tensor) -> Features:
        stages = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                stages.append(x)
        feat = torch.flatten(self.avgpool(x), 1)
        return {"logits": self.classifier(self.dropout(feat)), "penultimate": feat, "stages": stages}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extract(x)["logits"]


def wrn_26_2(num_classes: int) -> ResNet:
    """ATS's "WRN26-2", the smaller TinyImageNet teacher: our reading of the name.

    It is wide_resnet50_2's torchvision design (bottlenecks with width_per_group=128) at depth
    26: layers [2, 2, 2, 2], i.e. 8 bottlenecks x 3 convs + stem + fc. The global pool makes it
    accept any input of 32x32 or more.
    """
    return ResNet(Bottleneck, [2, 2, 2, 2], num_classes=num_classes, width_per_group=128)
