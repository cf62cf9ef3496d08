"""The distillers' base (benchmark/engine/distillers/base.py): the feature modules a stage trains."""

import pytest

from benchmark.engine.distillers.base import feature_modules
from benchmark.engine.models import build_model

# RepDistiller's get_feat_modules of each student family (models/*.py): what AB's and FSP's
# stage trains. WRN leaves out its final bn1, MobileNetV2 its conv2, ShuffleV2 its conv2/bn2.
FEAT_MODULES = {
    "wrn_16_1": ["conv1", "block1", "block2", "block3"],
    "mobilenetv2": ["conv1", "blocks"],
    "shufflev2": ["conv1", "bn1", "layer1", "layer2", "layer3"],
    "shufflev1": ["conv1", "bn1", "layer1", "layer2", "layer3"],
    "resnet8": ["conv1", "bn1", "layer1", "layer2", "layer3"],
    "vgg8": ["block0", "block1", "block2", "block3", "block4"],
    "resnet50_cifar": ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"],
}


@pytest.mark.parametrize("name", sorted(FEAT_MODULES))
def test_feature_modules_are_repdistillers(name):
    m = build_model(name, 10)
    names = {id(mod): n for n, mod in m.named_children()}
    assert [names[id(mod)] for mod in feature_modules(m)] == FEAT_MODULES[name]
