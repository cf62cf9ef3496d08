"""Evaluation: top-1 and top-5 with the logits (one host sync at the end), and precise BN (every
BatchNorm's running statistics recomputed as the plain average over given batches)."""

from __future__ import annotations

import torch

from . import accel
from .accel import Accel


@torch.no_grad()
def recalibrate_bn(model: torch.nn.Module, batches, accel_opts: Accel = Accel()) -> None:
    """Precise BN: every BatchNorm's running mean/var becomes the plain average of its batch
    statistics over ``batches`` (train mode, momentum None), as torch's cumulative average.

    This is ``torch.optim.swa_utils.update_bn``: it resets every BatchNorm's statistics, sets
    momentum None, forwards each batch's first element in train mode and restores momenta and mode,
    which gives the same bits as the loop this code had (tests/test_train.py compares them in
    float32 and float64). What is ours: the batch goes through ``accel.prepare_input`` (channels-last,
    the device's layout), as the training step's input does, and no autograd graph is built
    (``no_grad`` around it; update_bn alone would record one per batch and throw it away)."""
    from torch.optim.swa_utils import update_bn

    update_bn((accel.prepare_input(batch[0], accel_opts) for batch in batches), model)


@torch.no_grad()
def evaluate(model, batches) -> dict:
    """top-1 / top-5 (%) and the logits, accumulated on the device (one sync at the end)."""
    model.eval()
    logits, labels = [], []
    for x, y in batches:
        logits.append(model(x).float())
        labels.append(y)
    z, y = torch.cat(logits), torch.cat(labels)
    k = min(5, z.shape[1])
    top = z.topk(k, dim=1).indices
    top1 = (top[:, 0] == y).float().mean().item() * 100
    top5 = (top == y[:, None]).any(dim=1).float().mean().item() * 100
    return {"top1": top1, "top5": top5, "logits": z, "labels": y}
