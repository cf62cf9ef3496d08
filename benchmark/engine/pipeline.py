"""Batches for training and evaluation, with randomness that is a function of (seed, epoch).

Two pipelines give the same interface (``train_batches(seed, epoch)``, ``test_batches()``,
``train_eval_batches()``):

- ``TensorPipeline``: small-image datasets (and every generated stand-in) live on the training
  device as uint8; random crop with zero padding and horizontal flip are done there, in batches.
  The padding is applied to the uint8 image before normalisation, exactly as torchvision's
  ``RandomCrop(padding=p)`` pads the PIL image before ``ToTensor``/``Normalize``.
- ``LoaderPipeline`` (data/loader.py): image-folder datasets (CUB, Dogs, ImageNet) and Speech
  Commands' clips (data/speech.py) through a ``DataLoader``, each sample's draws (crop and flip, or
  time shift and noise) from its own (seed, epoch, index) stream.

Because an epoch's shuffling and augmentation come from a generator seeded by (seed, epoch),
a run resumed at any epoch boundary sees exactly the batches an uninterrupted run sees.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator

import torch


def derive_seed(*parts) -> int:
    """A 63-bit seed from any parts, stable across processes and machines (unlike hash())."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@dataclass(frozen=True)
class Augmentation:
    """Random crop to the image's own size after zero (or reflect) padding, then a horizontal flip."""
    padding: int = 4
    flip: bool = True
    reflect: bool = False  # torchvision's padding_mode="reflect" (edge not repeated) instead of zeros


def batch_indices(n: int, batch_size: int, drop_last: bool, steps: int | None) -> list[tuple[int, int]]:
    stops = list(range(0, n, batch_size))
    spans = [(a, min(a + batch_size, n)) for a in stops]
    if drop_last and spans and spans[-1][1] - spans[-1][0] < batch_size:
        spans.pop()
    return spans[:steps] if steps else spans


class TensorPipeline:
    def __init__(self, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                 mean, std, augmentation: Augmentation, batch_size: int, eval_batch_size: int = 256,
                 drop_last: bool = False, steps_per_epoch: int | None = None, device="cpu"):
        self.device = torch.device(device)
        self.train_images, self.train_labels = (t.to(self.device) for t in train)
        self.test_images, self.test_labels = (t.to(self.device) for t in test)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.aug = augmentation
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.drop_last, self.steps_per_epoch = drop_last, steps_per_epoch

    @property
    def num_train(self) -> int:
        return len(self.train_labels)

    def normalize(self, images_nhwc_u8: torch.Tensor) -> torch.Tensor:
        # Same operations, in the same order, as ToTensor then Normalize. contiguous(): the permuted
        # view has channels-last strides, which the float ops keep and convolutions follow; the
        # layout is accel.prepare_input's to choose (--channels-last), not a side effect of this view.
        x = images_nhwc_u8.permute(0, 3, 1, 2).contiguous().float().div(255)
        return x.sub(self.mean).div(self.std)

    def epoch_draws(self, seed: int, epoch: int):
        """Permutation, crop offsets and flips for one epoch, drawn on the CPU from one generator
        (the same numbers on every device) and moved to the device once per epoch."""
        g = torch.Generator().manual_seed(derive_seed("train-batches", seed, epoch))
        n, p = self.num_train, self.aug.padding
        perm = torch.randperm(n, generator=g)
        offsets = torch.randint(0, 2 * p + 1, (n, 2), generator=g)
        flips = torch.rand(n, generator=g) < 0.5 if self.aug.flip else torch.zeros(n, dtype=torch.bool)
        return perm.to(self.device), offsets.to(self.device), flips.to(self.device)

    def augment(self, images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC batch -> cropped, flipped uint8 NHWC batch (per-sample offsets and flips)."""
        p = self.aug.padding
        b, h, w, _ = images.shape
        if p:
            if self.aug.reflect:  # reflect padding works on float NCHW; uint8 values survive exactly
                images = torch.nn.functional.pad(images.permute(0, 3, 1, 2).float(), (p, p, p, p), mode="reflect")
                images = images.to(torch.uint8).permute(0, 2, 3, 1)
            else:
                images = torch.nn.functional.pad(images, (0, 0, p, p, p, p))  # zeros, as torchvision
            rows = offsets[:, 0:1] + torch.arange(h, device=images.device)
            cols = offsets[:, 1:2] + torch.arange(w, device=images.device)
            batch = torch.arange(b, device=images.device)[:, None, None]
            images = images[batch, rows[:, :, None], cols[:, None, :]]
        if self.aug.flip:
            images = torch.where(flips[:, None, None, None], images.flip(2), images)
        return images

    def train_batches(self, seed: int, epoch: int, with_index: bool = False) -> Iterator[tuple]:
        """(x, y) batches; with_index: (x, y, index), index = the samples' positions in the
        training set (CRD's memory bank). The batches are the same either way."""
        perm, offsets, flips = self.epoch_draws(seed, epoch)
        for a, b in batch_indices(self.num_train, self.batch_size, self.drop_last, self.steps_per_epoch):
            idx = perm[a:b]
            images = self.augment(self.train_images[idx], offsets[idx], flips[idx])
            if with_index:
                yield self.normalize(images), self.train_labels[idx], idx
            else:
                yield self.normalize(images), self.train_labels[idx]

    def probe_batch(self) -> torch.Tensor:
        """Two un-augmented training images: feature distillers size their adapters on it."""
        return self.normalize(self.train_images[:2])

    def train_targets(self) -> torch.Tensor:
        """Labels of the whole training set, in index order."""
        return self.train_labels

    def _plain_batches(self, images, labels):
        for a, b in batch_indices(len(labels), self.eval_batch_size, False, None):
            yield self.normalize(images[a:b]), labels[a:b]

    def test_batches(self):
        return self._plain_batches(self.test_images, self.test_labels)

    def train_eval_batches(self):
        return self._plain_batches(self.train_images, self.train_labels)

    def record(self) -> dict:
        """How the training images were loaded: for the result (no files, so no decoder)."""
        return {"images": "uint8 arrays on the training device", "decode": None}
