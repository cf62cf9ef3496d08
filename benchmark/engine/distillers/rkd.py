"""Relational KD (Park et al., CVPR 2019), as in the CRD benchmark (``--distill rkd``).

On the pooled vectors t = feat_t[-1], s = feat_s[-1] of a batch:

    psi_D(i, j) = ||x_i - x_j||_2 / mu,   mu = mean of the positive pairwise distances   (Eq. 4)
    psi_A(i, j, k) = < (x_i - x_j)/||x_i - x_j||, (x_k - x_j)/||x_k - x_j|| >           (Eq. 6)
    L_RKD = w_d * l_delta(psi_D(s), psi_D(t)) + w_a * l_delta(psi_A(s), psi_A(t))

l_delta = Huber (smooth L1, threshold 1), mean over all pairs / triplets (including the
zero diagonal terms, as RepDistiller); distances are clamped at eps = 1e-12 before the
square root. w_d = 25, w_a = 50 (paper and RepDistiller). No adapter.
Published weight (CRD benchmark): beta = 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Distiller, taps, up


def pairwise_distance(x, eps: float = 1e-12):
    sq = x.pow(2).sum(1)
    d = (sq[:, None] + sq[None, :] - 2 * x @ x.t()).clamp(min=eps).sqrt()
    return d * (1 - torch.eye(len(x), dtype=x.dtype, device=x.device))  # exact zeros on the diagonal


def by_mean_distance(d):
    """d / mu, mu the mean of the positive entries of d. Those are the off-diagonal ones (the
    distances are clamped at sqrt(eps) > 0, the diagonal is 0), taken in the same order as
    ``d[d > 0]`` (so mu has the same bits) but with their count known on the host: a boolean
    index would make the host wait for it. A NaN entry makes mu NaN here, and the loss NaN both ways."""
    b = len(d)
    off_diagonal = d.flatten()[1:].view(b - 1, b + 1)[:, :-1].reshape(-1)
    return d / off_diagonal.mean()


def angles(x):
    e = F.normalize(x[None, :, :] - x[:, None, :], p=2, dim=2)  # e[j, i] = unit(x_i - x_j)
    return torch.bmm(e, e.transpose(1, 2)).flatten()


class RKD(Distiller):
    PARAMS = {"weight": 1.0, "w_dist": 25.0, "w_angle": 50.0}

    def feature_loss(self, fs, ft, y, index):  # noqa: ARG002 (Distiller.feature_loss's signature)
        s, t = up(taps(fs)[-1]).flatten(1), up(taps(ft)[-1]).flatten(1)
        with torch.no_grad():
            d_t = by_mean_distance(pairwise_distance(t))
            a_t = angles(t)
        d_s = by_mean_distance(pairwise_distance(s))
        return (self.params["w_dist"] * F.smooth_l1_loss(d_s, d_t)
                + self.params["w_angle"] * F.smooth_l1_loss(angles(s), a_t))
