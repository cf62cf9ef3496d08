"""Variational information distillation (Ahn et al., CVPR 2019), as in the CRD benchmark (``--distill vid``).

For every intermediate map pair (feat[1:-1]), a Gaussian with a learned mean and a learned
per-channel variance models the teacher map given the student map:

    mu = r(f_s)  (1x1 conv -> ReLU -> 1x1 conv -> ReLU -> 1x1 conv, no biases, C_s -> C_t -> C_t -> C_t)
    sigma_c^2 = softplus(alpha_c) + eps                                            (Eq. 5)
    L_VID = sum_layers mean_{n,c,h,w} 1/2 [ (t_nchw - mu_nchw)^2 / sigma_c^2 + log sigma_c^2 ]   (Eq. 4,
            up to the constant log(2 pi)/2)

the larger map average-pooled to the smaller one's size. alpha is initialised so that
sigma^2 = init_var (5.0) and eps = 1e-5 (RepDistiller's VIDLoss). Regressors and alpha are
trainable adapters. Published weight (CRD benchmark): beta = 1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Distiller, match_spatial, taps, up

EPS = 1e-5


class VIDLayer(nn.Module):
    def __init__(self, c_in: int, c_mid: int, c_out: int, init_var: float):
        super().__init__()
        self.regressor = nn.Sequential(
            nn.Conv2d(c_in, c_mid, 1, bias=False), nn.ReLU(),
            nn.Conv2d(c_mid, c_mid, 1, bias=False), nn.ReLU(),
            nn.Conv2d(c_mid, c_out, 1, bias=False))
        # softplus(alpha) + eps = init_var
        self.alpha = nn.Parameter(torch.full((c_out,), math.log(math.expm1(init_var - EPS))))

    def forward(self, f_s, f_t):
        f_s, f_t = match_spatial(up(f_s), up(f_t))
        mu = self.regressor(f_s)
        var = (F.softplus(self.alpha) + EPS).view(1, -1, 1, 1)
        return (0.5 * ((mu - f_t).pow(2) / var + var.log())).mean()


class VID(Distiller):
    PARAMS = {"weight": 1.0, "init_var": 5.0}

    @classmethod
    def check(cls, params):
        super().check(params)
        if not params["init_var"] > EPS:
            raise ValueError(f"init_var must be > {EPS}, got {params['init_var']!r}")

    def __init__(self, student_probe, teacher_probe, num_classes, **params):
        super().__init__(student_probe, teacher_probe, num_classes, **params)
        pairs = list(zip(taps(student_probe)[1:-1], taps(teacher_probe)[1:-1]))
        self.layers = nn.ModuleList(
            VIDLayer(s.shape[1], t.shape[1], t.shape[1], params["init_var"]) for s, t in pairs)

    def feature_loss(self, fs, ft, y, index):  # noqa: ARG002 (Distiller.feature_loss's signature)
        return sum(layer(s, t) for layer, s, t in zip(self.layers, taps(fs)[1:-1], taps(ft)[1:-1]))
