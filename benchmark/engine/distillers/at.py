"""Attention transfer (Zagoruyko & Komodakis, ICLR 2017), as in the CRD benchmark (``--distill attention``).

    Q(f) = vec(mean_c f_c^p) / || vec(mean_c f_c^p) ||_2        (p = 2; Z&K Eq. 2 with F_sum^p)
    L_AT = sum_j mean_i mean_k (Q_s^j(i)_k - Q_t^j(i)_k)^2

over the intermediate maps j in feat[1:-1] (every stage output, no stem, no pooled vector),
the larger map average-pooled to the smaller one's size first; mean over the batch and the
positions (RepDistiller's ``(at(f_s) - at(f_t)).pow(2).mean()``; Z&K's beta/2 and the
un-squared norm are folded into the weight). No trainable adapter.
Published weight (CRD benchmark): beta = 1000.
"""

from __future__ import annotations

import torch.nn.functional as F

from .base import Distiller, match_spatial, taps, up


def attention_map(f, p: float = 2.0):
    a = up(f).pow(p).mean(1).flatten(1)
    return F.normalize(a, dim=1)


class AT(Distiller):
    PARAMS = {"weight": 1000.0, "p": 2.0}

    def feature_loss(self, fs, ft, y, index):  # noqa: ARG002 (Distiller.feature_loss's signature)
        total = 0.0
        for f_s, f_t in zip(taps(fs)[1:-1], taps(ft)[1:-1]):
            f_s, f_t = match_spatial(f_s, f_t)
            total = total + (attention_map(f_s, self.params["p"]) - attention_map(f_t, self.params["p"])).pow(2).mean()
        return total
