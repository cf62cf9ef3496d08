"""Factor transfer (Kim et al., NeurIPS 2018), as in the CRD benchmark (``--distill factor``).

Stage 1 trains a paraphraser P (three 3x3 convs with LeakyReLU 0.1 down to k = 0.5 of the
teacher's channels, three transposed convs back; no BatchNorm) to reconstruct the teacher's
last intermediate map f_t = feat_t[-2]:  L_rec = mean (P_dec(P_enc(f_t)) - f_t)^2  (Kim Eq. 1
with nn.MSELoss), ``init_epochs`` (30) epochs at ``init_lr``. Its default (None) is RepDistiller's
rate for the student (:func:`repdistiller_ft_lr`): 0.01 for CIFAR ResNet and WRN students
(helper/pretrain.py l. 22-27), otherwise its --learning_rate, which is 0.01 for MobileNetV2,
ShuffleV1 and ShuffleV2 students (train_student.py l. 93-94) and 0.05 for the others (VGG,
ResNet50). A number given as ``init_lr`` is used as is; the result records the rate that ran. The main stage trains a translator T (three 3x3 convs
with BatchNorm and LeakyReLU 0.1, student channels -> k * teacher channels) with the student;
P stays fixed. With F(f) = normalise(vec(mean_c f_c^2)) (RepDistiller's FactorTransfer, p1 = 2)

    L_FT = mean | F(T(f_s)) - F(P_enc(f_t)) |          (p2 = 1; Kim Eq. 3 on RepDistiller's factor)

(the larger factor average-pooled to the other's size). Published weight: beta = 200.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.engine.models.cifar_resnet import CifarResNet
from benchmark.engine.models.mobilenetv2 import MobileNetV2
from benchmark.engine.models.shufflenetv1 import ShuffleNetV1
from benchmark.engine.models.shufflenetv2 import ShuffleNetV2
from benchmark.engine.models.wrn import WideResNet

from .base import PretrainStage, match_spatial, taps, up
from .stage import StagedDistiller


def repdistiller_ft_lr(student: nn.Module) -> float:
    """RepDistiller's FT pre-training rate for this student (see the module docstring)."""
    if isinstance(student, (CifarResNet, WideResNet)):
        return 0.01  # pretrain.py l. 22-25: resnet8..resnet110, resnet8x4/32x4, wrn_*
    if isinstance(student, (MobileNetV2, ShuffleNetV1, ShuffleNetV2)):
        return 0.01  # its --learning_rate for these students (train_student.py l. 93-94)
    return 0.05  # its --learning_rate default (train_student.py l. 50)


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
    PARAMS = {"weight": 200.0, "k": 0.5, "init_lr": None}  # None: repdistiller_ft_lr(student)

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

    def stage_loss(self, fs, ft, y):  # noqa: ARG002 (PretrainStage.loss's signature)
        f_t = up(taps(ft)[-2])
        return F.mse_loss(self.paraphraser.decoder(self.paraphraser.encoder(f_t)), f_t)

    def pretrain_stages(self, student):
        lr = self.params["init_lr"] if self.params["init_lr"] is not None else repdistiller_ft_lr(student)
        return [PretrainStage("ft-paraphraser", self.params["init_epochs"], lr,
                          [self.paraphraser], self.stage_loss, needs_student=False)]

    def feature_loss(self, fs, ft, y, index):  # noqa: ARG002 (Distiller.feature_loss's signature)
        with torch.no_grad():  # the paraphraser is fixed after its stage (not in RepDistiller's trainable_list)
            factor_t = self.paraphraser.encoder(up(taps(ft)[-2]))
        factor_s, factor_t = match_spatial(self.translator(up(taps(fs)[-2])), factor_t)
        return (factor(factor_s) - factor(factor_t)).abs().mean()
