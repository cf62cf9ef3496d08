"""Assembling a run (benchmark/engine/assembly.py): the tensor pipeline's augmentation read off each
dataset's torchvision transform, and the normalisation a config asks for. Whole pipelines are built
in test_numerics.py, test_noise.py and test_horizontal.py."""

from benchmark.engine.assembly import array_augmentation, normalization
from benchmark.engine.pipeline import Augmentation


def test_the_tensor_augmentation_is_the_transforms_own():
    assert array_augmentation("cifar100", "standard") == Augmentation(padding=4, flip=True, reflect=False)
    assert array_augmentation("cifar100", "crop_reflect_flip") == Augmentation(padding=4, flip=True, reflect=True)
    assert array_augmentation("tinyimagenet", "standard") == Augmentation(padding=8, flip=True, reflect=False)
    assert array_augmentation("cifar100", "none") == Augmentation(padding=0, flip=False, reflect=False)
    assert array_augmentation("cub", "lskd_cub") is None  # a resized crop: the DataLoader pipeline's


def test_normalisation_is_the_datasets_unless_the_config_gives_one():
    cfg = {"dataset": "cifar10", "data": {"normalize": None}}
    assert normalization(cfg) == ([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616])
    own = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    assert normalization({**cfg, "data": {"normalize": own}}) == ([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
