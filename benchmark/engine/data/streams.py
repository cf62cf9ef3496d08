"""Per-sample random streams for image-folder training: every sample's augmentation draws from a
generator seeded by (seed, epoch, index), so the crops and flips of an epoch are the same with 0, 2
or 16 DataLoader workers, persistent or not, and a resumed run sees what an uninterrupted one saw.

Before this, the transforms drew from torch's global generator: at 0 workers the training process's
own (its state, hence the crops, depended on everything drawn before), in a worker that worker's
DataLoader seed (the crops depended on the worker count). Now the sampler hands each worker the key
``(seed, epoch, index)`` (a persistent worker is told the epoch by its keys), and ``SampleStreams``
seeds torch's CPU generator from the key around one item's transform, then puts the generator's
state back: the training process's generator is left as it was.

Only torch's CPU generator is seeded: every transform of the suite (transforms.py) draws from it,
none from Python's ``random``. Saving, seeding and restoring it costs about 9 us per image
(``torch.manual_seed`` would cost 0.7 ms: it also queues a seed for every accelerator).
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager

import torch


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The 63-bit seed of one sample's augmentation in one epoch (sha256, the same on every machine)."""
    digest = hashlib.sha256(f"sample:{seed}:{epoch}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def order_seed(seed: int, epoch: int) -> int:
    """The seed of an epoch's shuffling: pipeline.derive_seed("train-batches", seed, epoch), the
    tensor pipeline's, so both pipelines name an epoch's order the same way."""
    digest = hashlib.sha256(f"train-batches:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed(sample_seed(seed, epoch, index))


@contextmanager
def seeded(value: int):
    """torch's CPU generator seeded with ``value`` inside the block, its state restored after."""
    gen = torch.default_generator
    state = gen.get_state()
    gen.manual_seed(value)
    try:
        yield
    finally:
        gen.set_state(state)


class EpochSampler(torch.utils.data.Sampler):
    """An epoch's shuffled indices as keys ``(seed, epoch, index)``; ``set_epoch`` before iterating.
    The order is ``randperm`` from a generator seeded by (seed, epoch)."""

    def __init__(self, n: int):
        self.n, self.seed, self.epoch = n, 0, 0

    def set_epoch(self, seed: int, epoch: int) -> None:
        self.seed, self.epoch = seed, epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(order_seed(self.seed, self.epoch))
        seed, epoch = self.seed, self.epoch
        return iter([(seed, epoch, i) for i in torch.randperm(self.n, generator=g).tolist()])


class SampleStreams(torch.utils.data.Dataset):
    """A dataset with random transforms, read by key: item ``(seed, epoch, i)`` is ``(x, y, i)``,
    the transform drawing from the sample's own stream."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        seed, epoch, i = key
        if hasattr(self.dataset, "set_epoch"):  # draws of its own (speech clips), seeded from the key in this worker
            self.dataset.set_epoch(seed, epoch)
        with seeded(sample_seed(seed, epoch, i)):
            x, y = self.dataset[i]
        return x, y, i
