"""Activation boundaries (Heo et al., AAAI 2019), as in the CRD benchmark (``--distill abound``).

A pre-training stage only. For each intermediate map pair j of RepDistiller's ``preact=True``
feature list (feat[1:-1]: the stage outputs before their final ReLU), a connector r_j maps the
student's map onto the teacher's (identity when channels and size already agree, else
ConvReg without its ReLU: conv + BatchNorm), and the alternative L2 loss of Heo Eq. 5 (margin
mu = 1) pushes each student neuron to the teacher's side of the activation boundary:

    l(s, t) = sum_{n,c,h,w} (s + mu)^2 [s > -mu][t <= 0] + (s - mu)^2 [s <= mu][t > 0]
    L_AB = sum_j w_j * l(r_j(s_j), t_j) / B * 3 / 1000,   w_j = 2^(j - J + 1)  (j = 0..J-1)

Stage (RepDistiller helper/pretrain.py): ``init_epochs`` (30) epochs at ``init_lr`` (0.05),
training the connectors and the student's feature layers (RepDistiller's ``get_feat_modules()``,
:func:`base.feature_modules`) on L_AB, unweighted. For a WRN student that list leaves out the
final ``bn1`` (models/wrn.py l. 88-94), so it stays untrained and, the student being in eval mode
(pretrain.py l. 12-14), its running statistics stay put while its pre-activation tap
``bn1(block3)`` normalises with them, as in RepDistiller.

Not reproduced (a reading judged not worth a switch): RepDistiller's WRN applies the BNs of its
pre-activation taps a second time when ``preact=True`` (models/wrn.py l. 118-121), so a BN in
train mode moves its running statistics twice per batch (block2's and block3's first ``bn1`` in
the stage; those two and the final ``bn1`` in AB's main stage, where loops.py l. 111-116 keeps
preact=True). Both applications see the same batch, so every output and gradient is unchanged; only
the running averages differ (momentum 1 - 0.9^2 = 0.19 instead of 0.1 on those BNs), which
changes test-time normalisation by the noise of a few batches at the end of training. Here each BN
runs once per batch. Main stage: RepDistiller's loop sets ``loss_kd = 0`` for AB, so the run then
trains with CE (and KD if kd_weight > 0) only; ``weight`` (-b 1 in the CRD benchmark's command)
is recorded but multiplies nothing, as there.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import PretrainStage, feature_modules, preact_taps, up
from .fitnet import ConvReg
from .stage import StagedDistiller


def boundary_loss(s: torch.Tensor, t: torch.Tensor, margin: float) -> torch.Tensor:
    """Heo's alternative L2 (Eq. 5), summed over every element."""
    s, t = up(s), up(t)
    wrong_off = ((s > -margin) & (t <= 0)).to(s.dtype)
    wrong_on = ((s <= margin) & (t > 0)).to(s.dtype)
    return ((s + margin).pow(2) * wrong_off + (s - margin).pow(2) * wrong_on).sum()


class AB(StagedDistiller):
    PARAMS = {"weight": 1.0, "margin": 1.0}

    @classmethod
    def check(cls, params):
        super().check(params)
        if not params["margin"] >= 0:
            raise ValueError(f"margin must be >= 0, got {params['margin']!r}")

    def __init__(self, student_probe, teacher_probe, num_classes, **params):
        super().__init__(student_probe, teacher_probe, num_classes, **params)
        s, t = preact_taps(student_probe)[1:-1], preact_taps(teacher_probe)[1:-1]
        if len(s) != len(t):
            raise ValueError(f"the networks tap {len(s)} and {len(t)} feature maps")
        self.connectors = nn.ModuleList(
            nn.Identity() if a.shape[1:3] == b.shape[1:3] else ConvReg(a.shape, b.shape, use_relu=False)
            for a, b in zip(s, t))
        self.layer_weights = [2.0 ** (j - len(s) + 1) for j in range(len(s))]

    def stage_loss(self, fs, ft, y):
        pairs = zip(self.connectors, preact_taps(fs)[1:-1], preact_taps(ft)[1:-1])
        total = sum(w * boundary_loss(r(s), t, self.params["margin"])
                    for w, (r, s, t) in zip(self.layer_weights, pairs))
        return total / len(y) * 3 / 1000

    def pretrain_stages(self, student):
        return [PretrainStage("ab-connectors", self.params["init_epochs"], self.params["init_lr"],
                          [self.connectors, *feature_modules(student)], self.stage_loss)]

    def feature_loss(self, fs, ft, y, index):  # noqa: ARG002 (Distiller.feature_loss's signature)
        return up(fs["logits"]).new_zeros(())
