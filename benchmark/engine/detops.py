"""Deterministic forms of the ops this suite uses that have no deterministic CUDA backward, and
the inventory of where it uses them.

Under deterministic kernels (``--numerics reproducible`` or ``strict``; benchmark/engine/numerics.py)
torch raises on a CUDA op whose backward has no deterministic implementation. The one this suite
uses is ``adaptive_avg_pool2d`` to an output larger than 1x1 (its CUDA backward adds with atomics;
to 1x1 torch itself computes a mean, which is deterministic). Each use in ``INVENTORY`` calls
:func:`adaptive_avg_pool2d` here, which computes the same thing deterministically on CUDA under
deterministic kernels and calls torch's op everywhere else, so the CPU's numbers do not move:

- output 1x1: the mean over the spatial dims (what torch's op computes then);
- the input's sizes divisible by the output's: ``avg_pool2d`` with kernel = stride = the ratio
  (adaptive pooling's windows are exactly those then);
- otherwise: the adaptive windows (start floor(i*H/h), end ceil((i+1)*H/h)) averaged one row band
  and then one column band at a time (the mean of means of a rectangle of equal rows is its mean).

tests/test_numerics.py proves each form equal to torch's op on the CPU, values and gradients
(bit for bit for the mean; to 1e-6 otherwise: the original divides the window's sum by kh then by kw,
avg_pool2d by kh*kw, and the banded form sums in two steps), and that every use in the package is
in the inventory.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# (file under benchmark/, line, what): every adaptive average pool of the package that can run on a
# map with a gradient, or to more than 1x1; all of them call this module's adaptive_avg_pool2d.
INVENTORY = (
    ("distillers/base.py", 93, "match_spatial: AT, NST and VID pool the larger student or teacher map"),
    ("distillers/base.py", 94, "match_spatial: the same, the other side"),
    ("distillers/fsp.py", 31, "fsp_matrix: the larger of two consecutive student maps (pre-training stage)"),
    ("distillers/fsp.py", 33, "fsp_matrix: the same, the other side"),
    ("distillers/fitnet.py", 72, "FitNet's 1x1 fall-back: the teacher's map (no gradient; kept for uniformity)"),
    ("distillers/reviewkd.py", 161, "ReviewKD's HCL pyramid: 4x4, 2x2 and 1x1 of student and teacher maps"),
    ("distillers/sckd.py", 60, "SCKD: the teacher map pooled to the regressor's output size"),
    ("models/imagenet.py", 129, "torchvision's AlexNet: its 6x6 avgpool, replaced by this module's AdaptiveAvgPool2d"),
    ("models/imagenet.py", 176, "AlexNet-small (ATS Table 5): its 2x2 avgpool"),
)


def _pair(size, height: int, width: int) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    return (height if h is None else int(h)), (width if w is None else int(w))


def _windows(n_in: int, n_out: int) -> list[tuple[int, int]]:
    """Adaptive pooling's windows along one dim: [floor(i*n_in/n_out), ceil((i+1)*n_in/n_out))."""
    return [((i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)) for i in range(n_out)]


def deterministic_adaptive_avg_pool2d(x: torch.Tensor, size) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, size)`` from ops whose CUDA backward is deterministic."""
    height, width = x.shape[-2:]
    h, w = _pair(size, height, width)
    if (h, w) == (1, 1):
        return x.mean((-2, -1), keepdim=True)
    if height % h == 0 and width % w == 0:
        return F.avg_pool2d(x, (height // h, width // w))
    rows = torch.stack([x[..., a:b, :].mean(-2) for a, b in _windows(height, h)], dim=-2)
    return torch.stack([rows[..., a:b].mean(-1) for a, b in _windows(width, w)], dim=-1)


def adaptive_avg_pool2d(x: torch.Tensor, size) -> torch.Tensor:
    """torch's op, except on CUDA under deterministic kernels: the deterministic form."""
    if x.is_cuda and torch.are_deterministic_algorithms_enabled():
        return deterministic_adaptive_avg_pool2d(x, size)
    return F.adaptive_avg_pool2d(x, size)


class AdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """``nn.AdaptiveAvgPool2d`` through :func:`adaptive_avg_pool2d` (no state: checkpoints unchanged)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return adaptive_avg_pool2d(x, self.output_size)
