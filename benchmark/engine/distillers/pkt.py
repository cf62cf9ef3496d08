"""Probabilistic knowledge transfer (Passalis & Tefas, ECCV 2018), as in the CRD benchmark (``--distill pkt``).

On the pooled vectors, L2-normalised (x / (||x|| + eps), NaN -> 0), with the cosine kernel
shifted to [0, 1]:

    K(a, b) = (cos(a, b) + 1) / 2,   p_ij = K(x_i, x_j) / sum_j K(x_i, x_j)          (Eq. 11-12)
    L_PKT = mean_ij  p^t_ij * log((p^t_ij + eps) / (p^s_ij + eps))                      (Eq. 13)

mean over the N x N entries (RepDistiller), eps = 1e-7. No adapter.
Published weight (CRD benchmark): beta = 30000.
"""

from __future__ import annotations

import torch

from .base import Distiller, taps, up

EPS = 1e-7


def conditional_probs(x):
    x = x / (x.pow(2).sum(1, keepdim=True).sqrt() + EPS)
    x = torch.nan_to_num(x, nan=0.0)
    k = (x @ x.t() + 1.0) / 2.0
    return k / k.sum(1, keepdim=True)


class PKT(Distiller):
    PARAMS = {"weight": 30000.0}

    def feature_loss(self, fs, ft, y, index):  # noqa: ARG002 (Distiller.feature_loss's signature)
        p_s = conditional_probs(up(taps(fs)[-1]).flatten(1))
        p_t = conditional_probs(up(taps(ft)[-1]).flatten(1))
        return (p_t * torch.log((p_t + EPS) / (p_s + EPS))).mean()
