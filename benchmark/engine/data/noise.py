"""Label noise on the training split (KL-MSE's noisy-label runs, papers/klmse-slides.txt "Robustness
to Noisy Labels": symmetric noise 40 % and 80 %).

Symmetric noise: each training sample, independently with probability ``rate``, gets a label
drawn uniformly at random. Two readings of "uniformly", both named kinds:

- ``symmetric``: drawn from all K classes, so the draw may keep the true label (the expected
  fraction of changed labels is ``rate * (K - 1) / K``);
- ``symmetric_other``: drawn from the K - 1 other classes (every selected label changes).

The authors' code (jhoon-oh/kd_data) has no label-noise code at any commit, so it cannot settle
which one the slides' figure used (manifests/klmse/klmse-noisy.yaml says which the table takes).

The noisy labels are a function of (dataset, kind, seed) and the rate, nothing else: one uniform
number per sample decides whether it is redrawn (``u < rate``) and one draw per sample is its new
label, both from a generator seeded by (dataset, seed), so a teacher and its students see the same
labels, and the samples redrawn at 40 % are among those redrawn at 80 %. Only the training split
is touched; the test split keeps its labels.
"""

from __future__ import annotations

import hashlib

import torch

KINDS = ("none", "symmetric", "symmetric_other")


def _generator(dataset: str, seed: int) -> torch.Generator:
    digest = hashlib.sha256(f"label_noise/{dataset}/{seed}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def noisy_labels(labels: torch.Tensor, num_classes: int, dataset: str, kind: str, rate: float,
                 seed: int) -> torch.Tensor:
    """The training labels with noise of ``kind`` at ``rate`` (a new int64 tensor; the input is
    not changed). ``kind == "none"`` or ``rate == 0`` returns the labels as they are."""
    if kind not in KINDS:
        raise ValueError(f"unknown label noise kind {kind!r}; known: {', '.join(KINDS)}")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"label noise rate must be in [0, 1), got {rate!r}")
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    if kind == "none" or rate == 0.0:
        return labels.clone()
    g = _generator(dataset, seed)
    n = labels.numel()
    chosen = torch.rand(n, generator=g) < rate
    if kind == "symmetric":
        drawn = torch.randint(0, num_classes, (n,), generator=g)
    else:  # an offset in 1..K-1 added modulo K: uniform over the other classes
        drawn = (labels + torch.randint(1, num_classes, (n,), generator=g)) % num_classes
    return torch.where(chosen, drawn, labels)


class Relabeled(torch.utils.data.Dataset):
    """A dataset of (x, y) pairs with its labels replaced (the DataLoader pipeline's training
    split): item i is (x_i, labels[i]); ``targets`` lists the new labels."""

    def __init__(self, dataset, labels: torch.Tensor):
        if len(labels) != len(dataset):
            raise ValueError(f"{len(labels)} labels for {len(dataset)} samples")
        self.dataset = dataset
        self.targets = [int(y) for y in labels]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i][0], self.targets[i]
