"""The papers' PIL transform pipelines (benchmark/engine/data/transforms.py), against a reference crop
and flip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.engine.data.registry import get_spec
from benchmark.engine.data.transforms import make_transforms
from tests.fake_data import _images


def _reference_crop_flip(img: np.ndarray, seed: int, pad: int, flip: bool, mean, std):
    """The CIFAR pipeline by hand: zero-pad the uint8 image, crop, maybe flip, then scale and
    normalise. Draws the random numbers exactly as torchvision's RandomCrop and RandomHorizontalFlip."""
    torch.manual_seed(seed)
    size = img.shape[0]
    i = torch.randint(0, 2 * pad + 1, size=(1,)).item()
    j = torch.randint(0, 2 * pad + 1, size=(1,)).item()
    flipped = flip and torch.rand(1).item() < 0.5
    out = np.pad(img, ((pad, pad), (pad, pad), (0, 0)))[i : i + size, j : j + size]
    if flipped:
        out = out[:, ::-1]
    out = (out.astype(np.float64) / 255 - np.array(mean)) / np.array(std)
    return out.transpose(2, 0, 1), (i, j, flipped)


@pytest.mark.parametrize("name, flip", [("cifar100", True), ("cifar10", True), ("svhn", False)])
def test_train_transform_is_zero_pad_crop_flip_then_normalise(name, flip):
    img = _images(1, seed=7)[0]
    spec = get_spec(name)
    transform = make_transforms(name, "train")
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        got = transform(Image.fromarray(img)).numpy()
        want, params = _reference_crop_flip(img, seed, 4, flip, spec.mean, spec.std)
        np.testing.assert_allclose(got, want, atol=1e-5)
        seen.add(params[2])
        if params[0] == 0:  # the top rows are padding: zero pixels normalised, i.e. -mean/std
            np.testing.assert_allclose(got[:, 0, 5], -np.array(spec.mean) / np.array(spec.std), atol=1e-5)
    assert seen == ({True, False} if flip else {False})


def test_tinyimagenet_pads_by_eight_and_imagenet_constants_override():
    img = _images(1, size=64, seed=1)[0]
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    transform = make_transforms("tinyimagenet", "train", mean=mean, std=std)
    for seed in range(4):
        torch.manual_seed(seed)
        got = transform(Image.fromarray(img)).numpy()
        np.testing.assert_allclose(got, _reference_crop_flip(img, seed, 8, True, mean, std)[0], atol=1e-5)


def test_test_and_folder_pipelines():
    img = Image.fromarray(_images(1, seed=2)[0])
    x = make_transforms("cifar100", "test")(img)
    spec = get_spec("cifar100")
    want = (np.asarray(img) / 255 - np.array(spec.mean)) / np.array(spec.std)
    np.testing.assert_allclose(x.numpy(), want.transpose(2, 0, 1), atol=1e-5)  # no crop, no flip
    big = Image.new("RGB", (300, 260), (10, 20, 30))
    assert make_transforms("dogs", "test")(big).shape == (3, 224, 224)
    assert make_transforms("imagenet", "train")(big).shape == (3, 224, 224)
    steps = [type(t).__name__ for t in make_transforms("cub", "test").transforms]
    assert steps == ["Resize", "CenterCrop", "ToTensor", "Normalize"]
    assert make_transforms("cub", "test").transforms[0].size == 256
    lskd = make_transforms("cub", "train", augment="lskd_cub").transforms
    assert [type(t).__name__ for t in lskd] == [
        "RandomResizedCrop",
        "RandomHorizontalFlip",
        "RandomRotation",
        "RandomGrayscale",
        "ColorJitter",
        "ToTensor",
        "Normalize",
    ]
    assert lskd[0].scale == (0.2, 1.0) and lskd[2].degrees == [-45.0, 45.0]
    assert lskd[4].brightness == (0.8, 1.2) and lskd[4].saturation is None
    skd = make_transforms("imagenet", "train", augment="skd_imagenet").transforms
    assert [type(t).__name__ for t in skd] == ["RandomResizedCrop", "RandomHorizontalFlip", "ToTensor", "Normalize"]
    assert (skd[0].size, skd[0].scale, skd[0].ratio) == ((224, 224), (0.1, 1.0), (0.8, 1.25))
    assert make_transforms("imagenet", "train")(big).shape == make_transforms("imagenet", "train",
                                                                              augment="skd_imagenet")(big).shape
    with pytest.raises(ValueError, match="folder datasets"):
        make_transforms("cifar10", "train", augment="skd_imagenet")
    assert [type(t).__name__ for t in make_transforms("svhn", "train", augment="crop_flip").transforms][:2] == [
        "RandomCrop",
        "RandomHorizontalFlip",
    ]
    with pytest.raises(ValueError, match="unknown augment"):
        make_transforms("cifar10", "train", augment="autoaugment")
