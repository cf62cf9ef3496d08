"""Generated stand-ins for every dataset (the `smoke` profile): no download, same class count.

Each image is a sum of cues, every cue being "its group's prototype + CLASS_W x its own part":

    pixel = 128 + PIXEL_SCALE * (amp * (COLOUR_W * colour cast + LAYOUT_W * smooth layout (shifted)
                                        + TEXTURE_W * texture + DISTRACT_W * per-sample distractor)
                                 + PIXEL_NOISE * white noise)

- colour cast: one RGB offset per class - the first thing any network learns;
- layout: a random 8x8 colour field upsampled to the image, shifted by up to size/16 px per
  sample - a linear model on the mean-pooled image can read it;
- texture: per-sample white noise filtered by a class-specific 5x5 colour kernel - a stationary
  pattern that a convolution recognises anywhere in the image (drawn at 32 px and upsampled for
  TinyImageNet's 64 px, like the distractor);
- distractor (a per-sample smooth field), per-sample contrast and pixel noise keep the task from
  being trivially separable, so a trained teacher is not 100% confident.

Classes come in groups of GROUP_SIZE (100 classes = 20 groups of 5, like CIFAR-100's
superclasses; class c is in group c // GROUP_SIZE). Classes of a group share their prototypes, so
a trained model puts more wrong-class probability on same-group classes: "dark knowledge" for the
students. Class cues depend on (name, seed) only; samples on (name, seed, split): train and test
come from the same class distributions but are different images.

Sizes: 32 px for CIFAR/SVHN, 64 px for TinyImageNet (their real sizes); the 224-px datasets
(CUB, Dogs, ImageNet) are generated at 64 px by default to keep the CPU smoke run fast - reports
say so. Deterministic: torch.Generator seeded from a hash of (name, seed, split).
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F

from .registry import check_split, get_spec

GROUP_SIZE = 5  # every class count used (10, 100, 120, 200, 1000) is a multiple of 5
# Weights of the components (in units of a unit-variance field; pixel = 128 + PIXEL_SCALE * sum).
CLASS_W = 0.5  # class-specific part of each cue, relative to the group's shared part
COLOUR_W = 1.0  # a flat colour cast: the cue any network picks up first
LAYOUT_W = 1.0  # smooth colour layout: what a linear model on the pooled image sees
TEXTURE_W = 0.8  # stationary texture (filtered noise): what a convolution sees anywhere
DISTRACT_W = 1.5  # per-sample smooth distractor field, so the task is not trivially separable
PIXEL_NOISE = 0.3  # per-pixel white noise
PIXEL_SCALE = 32.0
PATTERN_RES = 8  # layout fields are random at this resolution, upsampled: smooth, shift-tolerant
KERNEL = 5  # texture kernels are KERNEL x KERNEL, mixing the 3 colour channels


def _seed(*parts) -> int:
    """A stable 63-bit seed (Python's hash() changes between processes)."""
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "little") >> 1


def _smooth(fields: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(fields, size=(size, size), mode="bilinear", align_corners=False)


def synthetic_groups(name: str) -> torch.Tensor:
    """Group index of every class of the stand-in (int64 [num_classes])."""
    return torch.arange(get_spec(name).num_classes) // GROUP_SIZE


def _class_params(groups: torch.Tensor, g: torch.Generator, *shape: int) -> torch.Tensor:
    """One cue per class: its group's random prototype + CLASS_W * its own random part."""
    shared = torch.randn(int(groups.max()) + 1, *shape, generator=g)[groups]
    return shared + CLASS_W * torch.randn(groups.numel(), *shape, generator=g)


def synthetic_arrays(
    name: str, split: str, seed: int = 0, per_class: int | None = None, image_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The generated stand-in split: (uint8 [N,H,W,3], int64 [N]), N = per_class * num_classes."""
    spec, split = get_spec(name), check_split(split)
    if per_class is None:
        per_class = spec.synthetic_train_per_class if split == "train" else spec.synthetic_test_per_class
    size = image_size or spec.synthetic_size
    if per_class < 1 or size < 8:
        raise ValueError("per_class must be >= 1 and image_size >= 8")
    groups = synthetic_groups(name)
    shift = max(1, size // 16)
    canvas = size + 2 * shift  # layouts are drawn larger; each sample takes a shifted window

    # Class cues: depend on (name, seed) only, so train and test share them.
    g = torch.Generator().manual_seed(_seed("classes", name, seed))
    colour = _class_params(groups, g, 3)  # [C,3]
    layout = _smooth(_class_params(groups, g, 3, PATTERN_RES, PATTERN_RES), canvas)  # [C,3,canvas,canvas]
    kernels = _class_params(groups, g, 3, 3, KERNEL, KERNEL)  # [C,out,in,k,k]
    # unit output variance per channel for unit white-noise input
    kernels = kernels / kernels.square().sum(dim=(2, 3, 4), keepdim=True).sqrt()

    # Samples: depend on the split too.
    g = torch.Generator().manual_seed(_seed("samples", name, seed, split))
    labels = torch.arange(groups.numel()).repeat_interleave(per_class)
    labels = labels[torch.randperm(labels.numel(), generator=g)]
    n = labels.numel()
    dy, dx = torch.randint(0, 2 * shift + 1, (2, n), generator=g)
    rows = (dy[:, None] + torch.arange(size))[:, :, None]  # [N,H,1]
    cols = (dx[:, None] + torch.arange(size))[:, None, :]  # [N,1,W]
    # advanced indexing around the channel slice yields NHWC directly: [N,H,W,3]
    x = layout[labels[:, None, None], :, rows, cols].mul_(LAYOUT_W)
    x.add_(COLOUR_W * colour[labels][:, None, None, :])
    # Texture (per-sample white noise filtered by the class kernel, one grouped convolution) plus
    # the smooth distractor, both drawn at most at 32 px and upsampled together: at 64 px the
    # convolution and the interpolation would dominate the cost.
    tsize = min(size, 32)
    noise = torch.randn(1, n * 3, tsize + KERNEL - 1, tsize + KERNEL - 1, generator=g)
    texture = F.conv2d(noise, kernels[labels].reshape(n * 3, 3, KERNEL, KERNEL), groups=n).reshape(n, 3, tsize, tsize)
    texture.mul_(TEXTURE_W)
    texture.add_(_smooth(torch.randn(n, 3, PATTERN_RES, PATTERN_RES, generator=g), tsize), alpha=DISTRACT_W)
    if tsize != size:
        texture = _smooth(texture, size)
    x.add_(texture.permute(0, 2, 3, 1))
    x.mul_(0.8 + 0.4 * torch.rand(n, 1, 1, 1, generator=g))  # per-sample contrast
    x.add_(torch.randn(n, size, size, 3, generator=g), alpha=PIXEL_NOISE)
    images = x.mul_(PIXEL_SCALE).add_(128).round_().clamp_(0, 255).to(torch.uint8)
    return images.contiguous(), labels
