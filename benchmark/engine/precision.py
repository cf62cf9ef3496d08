"""The one dtype rule of the loss and metric math: compute in float32, whatever the network ran in.

Under bf16/fp16 autocast the logits and feature maps arrive in half precision, where softmax,
logs and squares lose exactly the small values (wrong-class probabilities, feature differences)
that the losses and analyses are about. float64 input is kept as it is, so that tests can check
the math at double precision.
"""

from __future__ import annotations

import torch


def upcast(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 for the loss math; float64 kept."""
    return t if t.dtype == torch.float64 else t.float()
