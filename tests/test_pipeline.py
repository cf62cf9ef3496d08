"""The device pipeline's crop and flip against torchvision's functional transforms."""

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from benchmark.engine.pipeline import Augmentation, TensorPipeline, batch_indices


def make_pipeline(n=10, size=8, padding=2, flip=True, batch=4, reflect=False):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, size, size, 3), generator=g, dtype=torch.uint8)
    labels = torch.arange(n) % 3
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    return TensorPipeline((images, labels), (images[:4], labels[:4]), mean, std,
                          Augmentation(padding, flip, reflect), batch_size=batch), images, labels, mean, std


def reference(img_u8: torch.Tensor, top: int, left: int, flip: bool, padding: int, mean, std, mode="constant"):
    """torchvision's PIL path: pad (zeros or reflect), crop at (top, left), flip, ToTensor, Normalize."""
    pil = Image.fromarray(img_u8.numpy())
    pil = TF.pad(pil, padding, fill=0, padding_mode=mode)
    pil = TF.crop(pil, top, left, img_u8.shape[0], img_u8.shape[1])
    if flip:
        pil = TF.hflip(pil)
    return TF.normalize(TF.to_tensor(pil), mean, std)


@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_batches_equal_torchvision_for_the_same_draws(mode):
    pipe, images, labels, mean, std = make_pipeline(reflect=mode == "reflect")
    perm, offsets, flips = pipe.epoch_draws(seed=3, epoch=1)
    batches = list(pipe.train_batches(seed=3, epoch=1))
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    assert torch.equal(y, labels[perm])
    for k, i in enumerate(perm.tolist()):
        ref = reference(images[i], int(offsets[i, 0]), int(offsets[i, 1]), bool(flips[i]), 2, mean, std, mode)
        assert torch.equal(x[k], ref), f"sample {i}"


def test_draws_are_a_function_of_seed_and_epoch():
    pipe = make_pipeline()[0]
    a = [t.clone() for t in pipe.epoch_draws(1, 5)]
    b = pipe.epoch_draws(1, 5)
    c = pipe.epoch_draws(1, 6)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], c[0]) or not torch.equal(a[1], c[1])
    # both offsets extremes occur over many samples: crops span [0, 2p] inclusive
    big = make_pipeline(n=400)[0]
    offs = big.epoch_draws(0, 0)[1]
    assert offs.min() == 0 and offs.max() == 4
    assert 0.35 < big.epoch_draws(0, 0)[2].float().mean() < 0.65


def test_no_flip_no_padding_is_identity_normalisation():
    pipe, images, labels, mean, std = make_pipeline(padding=0, flip=False)
    perm, _, _ = pipe.epoch_draws(0, 0)
    x = torch.cat([b[0] for b in pipe.train_batches(0, 0)])
    expect = torch.stack([TF.normalize(TF.to_tensor(Image.fromarray(images[i].numpy())), mean, std)
                          for i in perm.tolist()])
    assert torch.equal(x, expect)


def test_batch_indices():
    assert batch_indices(10, 4, False, None) == [(0, 4), (4, 8), (8, 10)]
    assert batch_indices(10, 4, True, None) == [(0, 4), (4, 8)]
    assert batch_indices(10, 4, False, 2) == [(0, 4), (4, 8)]
    assert np.sum([b - a for a, b in batch_indices(97, 8, False, None)]) == 97


def test_reflect_recipe_maps_to_the_device_pipeline():
    from benchmark.engine.assembly import array_augmentation

    assert array_augmentation("cifar100", "crop_reflect_flip") == Augmentation(4, True, reflect=True)
    assert array_augmentation("cifar100", "standard") == Augmentation(4, True, reflect=False)
