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
Costs three extra backward passes per step (one per term's gradient). The gates stay on the
device (no host sync): a gated-off term's inputs are cut from the graph by ``torch.where``, so
it adds exactly 0 and no gradient even when it is not finite; the regressor then gets a zero
gradient (weight decay and momentum still act on it), where a host-side ``if`` left it none.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.engine.detops import adaptive_avg_pool2d

from .base import kd_term, taps, up
from .fitnet import FitNet


def _dot(a, b, zero: torch.Tensor) -> torch.Tensor:
    return sum(((x * y).sum() for x, y in zip(a, b) if x is not None and y is not None), zero)


def cut(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """x where ``keep`` (a 0-d bool tensor), else x detached: the gradient into x is selected,
    never multiplied, so a gated-off term passes exactly 0 even where its own gradient is not
    finite (0 * inf is NaN)."""
    return torch.where(keep, x, x.detach())


class SCKD(FitNet):
    PARAMS = {"weight": 100.0, "hint_layer": 2}

    @classmethod
    def defaults(cls):
        return {**super().defaults(), "ce_weight": 0.5, "kd_weight": 0.5}

    def attach(self, student):
        # A plain list: the student's parameters must not become this module's (state dict, optimizer).
        self._shared = [p for p in student.parameters() if p.requires_grad]

    def hint_pair(self, fs, ft):
        """FitNet's r(f_s) and f_t (fitnet.py's feature_loss, split so that r can be cut)."""
        f_s, f_t = taps(fs)[self.layer], taps(ft)[self.layer]
        r = up(self.regressor(f_s))
        if r.shape[-2:] != f_t.shape[-2:]:  # only the 1x1 fall-back of ConvReg gets here
            f_t = adaptive_avg_pool2d(f_t, r.shape[-2:])
        return r, up(f_t)

    def gates(self, ce, kd, hint):
        """Whether KD / hint agree with CE on the shared parameters: 0-d bool tensors on the
        device (a non-finite inner product reads as disagreement)."""
        shared = getattr(self, "_shared", None)
        if not shared:
            raise RuntimeError("sckd: attach(student) must be called before the first step")
        def grad(t):
            return torch.autograd.grad(t, shared, retain_graph=True, allow_unused=True)

        g_ce, zero = grad(ce), ce.new_zeros(())
        return _dot(grad(kd), g_ce, zero) > 0, _dot(grad(hint), g_ce, zero) > 0

    def weighted_terms(self, fs, ft, y, index=None):  # noqa: ARG002 (Distiller.weighted_terms's signature)
        z_s, z_t = up(fs["logits"]), ft["logits"].detach()
        r, f_t = self.hint_pair(fs, ft)
        ce = F.cross_entropy(z_s, y)
        use_kd, use_hint = self.gates(ce, kd_term(z_s, z_t, self.tau), (r - f_t).pow(2).mean())
        # Both terms again, from inputs cut where gated off; a gated-off term is 0 (the terms still
        # sum to the total) and sends no gradient, with no host sync.
        kd = kd_term(cut(z_s, use_kd), z_t, self.tau)
        hint = (cut(r, use_hint) - f_t).pow(2).mean()
        return {"ce": self.ce_weight * ce, "kd": torch.where(use_kd, self.kd_weight * kd, 0.0),
                "feature": torch.where(use_hint, self.weight * hint, 0.0)}
