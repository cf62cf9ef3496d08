"""Similarity-preserving KD (Tung & Mori, ICCV 2019), as in the CRD benchmark (``--distill similarity``).

    G = A A^T,  A = f reshaped to (b, C H W),   G~ = G / ||G_row||_2   (row-wise, Eq. 2-3)
    L_SP = 1/b^2 * || G~_t - G~_s ||_F^2                                        (Eq. 4)

on feat[-2] (the last stage's map). No adapter. Published weight (CRD benchmark): beta = 3000.
"""

from __future__ import annotations

import torch.nn.functional as F

from .base import Distiller, taps, up


def similarity(f):
    a = up(f).flatten(1)
    return F.normalize(a @ a.t(), dim=1)


class SP(Distiller):
    PARAMS = {"weight": 3000.0}

    def feature_loss(self, fs, ft, y, index):  # noqa: ARG002 (Distiller.feature_loss's signature)
        f_s, f_t = taps(fs)[-2], taps(ft)[-2]
        b = f_s.shape[0]
        return (similarity(f_s) - similarity(f_t)).pow(2).sum() / b**2
