"""Neuron selectivity transfer (Huang & Wang, 2017), as in the CRD benchmark (``--distill nst``).

MMD with the polynomial kernel k(x, y) = (x^T y)^2 (Eq. 9, d = 2, c = 0) between the
channels of the student and teacher maps, each channel a vector over positions, L2-normalised:

    L_NST = mean_{ij} k(t_i, t_j) + mean_{ij} k(s_i, s_j) - 2 mean_{ij} k(s_i, t_j)

per sample (means over channel pairs, then over the batch), summed over the intermediate maps
feat[1:-1], the larger map average-pooled to the smaller one's size. No adapter.
Published weight (CRD benchmark): beta = 50.
"""

from __future__ import annotations

import torch.nn.functional as F

from .base import Distiller, match_spatial, taps, up


def poly_kernel(a, b):
    """(N, C_a, P), (N, C_b, P) -> (N, C_b, C_a) of (a_i . b_j)^2."""
    return (b @ a.transpose(1, 2)).pow(2)


class NST(Distiller):
    PARAMS = {"weight": 50.0}

    def feature_loss(self, fs, ft, y, index):  # noqa: ARG002 (Distiller.feature_loss's signature)
        total = 0.0
        for f_s, f_t in zip(taps(fs)[1:-1], taps(ft)[1:-1]):
            f_s, f_t = match_spatial(f_s, f_t)
            s = F.normalize(up(f_s).flatten(2), dim=2)
            t = F.normalize(up(f_t).flatten(2), dim=2)
            total = total + (poly_kernel(t, t).mean() + poly_kernel(s, s).mean() - 2 * poly_kernel(s, t).mean())
        return total
