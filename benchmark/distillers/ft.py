"""Factor transfer (Kim et al., NeurIPS 2018), as in the CRD benchmark (``--distill factor``).

Stage 1 trains a paraphraser P (three 3x3 convs with LeakyReLU 0.1 down to k = 0.5 of the
teacher's channels, three transposed convs back; no BatchNorm) to reconstruct the teacher's
last intermediate map f_t = feat_t[-2]:  L_rec = mean (P_dec(P_enc(f_t)) - f_t)^2  (Kim Eq. 1
with nn.MSELoss), ``init_epochs`` (30) epochs at ``init_lr`` (RepDistiller: 0.01 for CIFAR
ResNet and WRN students, else 0.05). The main stage trains a translator T (three 3x3 convs
with BatchNorm and LeakyReLU 0.1, student channels -> k * teacher channels) with the student;
P stays fixed. With F(f) = normalise(vec(mean_c f_c^2)) (RepDistiller's FactorTransfer, p1 = 2)

    L_FT = mean | F(T(f_s)) - F(P_enc(f_t)) |          (p2 = 1; Kim Eq. 3 on RepDistiller's factor)

(the larger factor average-pooled to the other's size). Published weight: beta = 200.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import InitStage, match_spatial, taps, up
from .stage import StagedDistiller


def _convs(channels: list[int], transposed: bool, bn: bool) -> nn.Sequential:
    conv = nn.ConvTranspose2d if transposed else nn.Conv2d
    layers: list[nn.Module] = []
    for a, b in zip(channels[:-1], channels[1:]):
        layers += [conv(a, b, 3, 1, 1), *([nn.BatchNorm2d(b)] if bn else []), nn.LeakyReLU(0.1)]
    return nn.Sequential(*layers)


class Paraphraser(nn.Module):
    def __init__(self, c: int, k: float):
        super().__init__()
        m = int(c * k)
        self.encoder = _convs([c, c, m, m], transposed=False, bn=False)
        self.decoder = _convs([m, m, c, c], transposed=True, bn=False)


def factor(f: torch.Tensor) -> torch.Tensor:
    return F.normalize(up(f).pow(2).mean(1).flatten(1), dim=1)


class FT(StagedDistiller):
    PARAMS = {"weight": 200.0, "k": 0.5}

    @classmethod
    def check(cls, params):
        super().check(params)
        if not 0 < params["k"] <= 1:
            raise ValueError(f"k must be in (0, 1], got {params['k']!r}")

    def __init__(self, student_probe, teacher_probe, num_classes, **params):
        super().__init__(student_probe, teacher_probe, num_classes, **params)
        c_s, c_t = taps(student_probe)[-2].shape[1], taps(teacher_probe)[-2].shape[1]
        self.paraphraser = Paraphraser(c_t, params["k"])
        m = int(c_t * params["k"])
        self.translator = _convs([c_s, c_s, m, m], transposed=False, bn=True)

    def stage_loss(self, fs, ft, y):
        f_t = up(taps(ft)[-2])
        return F.mse_loss(self.paraphraser.decoder(self.paraphraser.encoder(f_t)), f_t)

    def init_stages(self, student):
        return [InitStage("ft-paraphraser", self.params["init_epochs"], self.params["init_lr"],
                          [self.paraphraser], self.stage_loss, needs_student=False)]

    def feature_loss(self, fs, ft, y, index):
        with torch.no_grad():  # the paraphraser is fixed after its stage (not in RepDistiller's trainable_list)
            factor_t = self.paraphraser.encoder(up(taps(ft)[-2]))
        factor_s, factor_t = match_spatial(self.translator(up(taps(fs)[-2])), factor_t)
        return (factor(factor_s) - factor(factor_t)).abs().mean()
