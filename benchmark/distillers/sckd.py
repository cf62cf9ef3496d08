"""SCKD, student-customised KD (Zhu & Wang, ICCV 2021), as the ATS paper runs it (App. C.3):
"two KD losses, including the KL divergence of probabilities (Eq. 1) and the L2 feature
distance loss as done in [36] (FitNets)", each used only when its gradient agrees with the
gradient of the CE loss:

    g_CE = d CE / d theta,  g_KD = d KD / d theta,  g_F = d L_hint / d theta
    L = ce_weight * CE + [<g_KD, g_CE> > 0] * kd_weight * KD + [<g_F, g_CE> > 0] * weight * L_hint

theta = the student network's trainable parameters (the parameters the three terms share;
the hint regressor is not part of theta, only L_hint reaches it). The test is made per batch
on the whole-batch gradients; a term whose gradient conflicts with CE's (negative inner
product, i.e. cosine < 0) is dropped for that step. KD = tau^2 KL(p_t(tau) || p_s(tau)),
batch mean; L_hint = FitNet's (ConvReg on feat[hint_layer], MSE).
Our reading, for what the ATS text leaves open: weights CE 0.5 / KD 0.5 (ATS's lambda = 0.5,
Eq. 1), tau 4, hint weight 100 and hint_layer 2 (FitNet's CRD-benchmark setting).
Costs three extra backward passes per step (one per term's gradient).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import kd_term, up
from .fitnet import FitNet


def _dot(a, b) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b) if x is not None and y is not None)


class SCKD(FitNet):
    PARAMS = {"weight": 100.0, "hint_layer": 2}

    @classmethod
    def defaults(cls):
        return {**super().defaults(), "ce_weight": 0.5, "kd_weight": 0.5}

    def attach(self, student):
        # A plain list: the student's parameters must not become this module's (state dict, optimizer).
        self._shared = [p for p in student.parameters() if p.requires_grad]

    def gates(self, fs, ft, y):
        """(CE, KD, hint) terms and whether KD / hint agree with CE on the shared parameters."""
        shared = getattr(self, "_shared", None)
        if not shared:
            raise RuntimeError("sckd: attach(student) must be called before the first step")
        z_s = up(fs["logits"])
        ce = F.cross_entropy(z_s, y)
        kd = kd_term(z_s, ft["logits"].detach(), self.tau)
        hint = self.feature_loss(fs, ft, y, None)
        def grad(t):
            return torch.autograd.grad(t, shared, retain_graph=True, allow_unused=True)

        g_ce = grad(ce)
        return ce, kd, hint, bool(_dot(grad(kd), g_ce) > 0), bool(_dot(grad(hint), g_ce) > 0)

    def weighted_terms(self, fs, ft, y, index=None):
        ce, kd, hint, use_kd, use_hint = self.gates(fs, ft, y)
        # A gated-off term is 0 for this step (x + 0 is x: the sum is that of the terms used).
        return {"ce": self.ce_weight * ce, "kd": self.kd_weight * kd if use_kd else torch.zeros_like(kd),
                "feature": self.weight * hint if use_hint else torch.zeros_like(hint)}
