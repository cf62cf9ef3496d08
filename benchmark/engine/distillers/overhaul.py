"""A Comprehensive Overhaul of Feature Distillation (Heo et al., ICCV 2019), as its public code
runs it (clovaai/overhaul-distillation, ImageNet/distiller.py and train_with_distillation.py).

Features: each stage's output before its final ReLU (``extract()["preact_taps"][1:]``; for a
torchvision ResNet the last block's ``bn3(...) + identity``). The student's map passes a
connector r_i (1x1 conv without bias, then BatchNorm; He init with fan-out, BN 1/0) to the
teacher's channels. The teacher's map is clipped from below by the margin-ReLU margin m_c,
the mean of the teacher's negative pre-activations, read from the BatchNorm before that ReLU
(gamma_c, beta_c) as if the response were N(beta_c, gamma_c^2):

    m_c = E[x | x < 0] = beta_c - |gamma_c| phi(beta_c/|gamma_c|) / Phi(-beta_c/|gamma_c|)
          (-3 |gamma_c| when Phi(-beta_c/|gamma_c|) <= 0.001, as the code;
          phi, Phi = the standard normal density and distribution function)

and the partial L2 distance skips positions where the student is already below a
non-positive target:

    d_p(T, S) = sum_{c,h,w} (S - T)^2  unless  S <= T <= 0,   T = max(F_t, m)
    L_feat = (1/B) sum_i d_p(T_i, r_i(F_s,i)) / 2^(n-i-1)      (later stages weigh more)

The code's total is ``CE + L_feat / 10000`` on ImageNet (CIFAR: / 1000), so the default
``weight`` is 1e-4; LS-KD Table B.5 replaces CE by its KD loss ("the task is KD"), which is
``ce_weight 0, kd_weight 1, tau T`` in the manifest.
Not reproduced: the code forwards the teacher in train mode (batch statistics); the suite's
teacher is always in eval mode.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import Distiller, up


def bn_margin(bn: nn.BatchNorm2d) -> torch.Tensor:
    """The margin: the expected negative response per channel, from the BN's affine parameters."""
    std, mean = bn.weight.detach().abs().double(), bn.bias.detach().double()
    z = -mean / std
    tail = torch.special.ndtr(z)  # P(x < 0)
    density = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    margin = torch.where(tail > 1e-3, mean - std * density / tail.clamp_min(1e-3), -3 * std)
    return margin.float()


def partial_l2(source: torch.Tensor, target: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """The partial L2 distance, summed: (S - max(T, m))^2 except where S <= max(T, m) <= 0."""
    target = torch.maximum(target, margin.view(1, -1, 1, 1))
    keep = (source > target) | (target > 0)
    return ((source - target).pow(2) * keep).sum()


def connector(s_channels: int, t_channels: int) -> nn.Sequential:
    conv = nn.Conv2d(s_channels, t_channels, 1, bias=False)
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / t_channels))  # the code's fan-out He init
    return nn.Sequential(conv, nn.BatchNorm2d(t_channels))


class Overhaul(Distiller):
    PARAMS = {"weight": 1e-4}

    def __init__(self, student_probe, teacher_probe, num_classes, **params):
        super().__init__(student_probe, teacher_probe, num_classes, **params)
        s, t = _maps(student_probe, "student"), _maps(teacher_probe, "teacher")
        if len(s) != len(t):
            raise ValueError(f"overhaul pairs stages one to one; student has {len(s)}, teacher {len(t)}")
        if [m.shape[-2:] for m in s] != [m.shape[-2:] for m in t]:
            raise ValueError(f"overhaul needs equal map sizes; student {[tuple(m.shape[-2:]) for m in s]}, "
                             f"teacher {[tuple(m.shape[-2:]) for m in t]}")
        self.connectors = nn.ModuleList(connector(a.shape[1], b.shape[1]) for a, b in zip(s, t))
        for i, m in enumerate(t):  # filled from the teacher's BatchNorms by attach_teacher
            self.register_buffer(f"margin{i}", torch.zeros(m.shape[1]), persistent=False)

    def attach_teacher(self, teacher: nn.Module) -> None:
        norms = getattr(teacher, "preact_batchnorms", None)
        if norms is None:
            raise ValueError("overhaul needs the teacher's BatchNorm before each tapped ReLU "
                             "(preact_batchnorms: torchvision and CIFAR ResNets have it)")
        for i, bn in enumerate(norms()):
            getattr(self, f"margin{i}").copy_(bn_margin(bn))

    def feature_loss(self, fs, ft, y, index):  # noqa: ARG002 (Distiller.feature_loss's signature)
        s, t = _maps(fs, "student"), _maps(ft, "teacher")
        n = len(s)
        total = sum(partial_l2(up(r(a)), up(b.detach()), getattr(self, f"margin{i}")) / 2 ** (n - i - 1)
                    for i, (r, a, b) in enumerate(zip(self.connectors, s, t)))
        return total / s[0].shape[0]


def _maps(f: dict, who: str) -> list:
    maps = (f.get("preact_taps") or [None])[1:]
    if not maps or any(m is None for m in maps):
        raise ValueError(f"overhaul needs the {who}'s pre-ReLU stage maps (preact_taps: torchvision "
                         "and CIFAR ResNets, WRNs and VGGs have them)")
    return maps
