"""FitNet (Romero et al., ICLR 2015), as run in the CRD benchmark (RepDistiller ``--distill hint``).

    L_hint = 1/(N C H W) * || r(f_s) - f_t ||_2^2        (Romero Eq. 3, mean instead of 1/2 sum)

f_s, f_t = feat[hint_layer] of student and teacher (RepDistiller ``--hint_layer 2``: the
output of the second stage; VGG: block2), r = ConvReg, a trainable regressor: a 3x3 stride-2
conv when the student map is twice the teacher's side, a 4x4 stride-2 transposed conv when
half, else a (1 + H_s - H_t) x (1 + W_s - W_t) conv; then BatchNorm and ReLU (a student map
smaller than the teacher's but not half of it, which RepDistiller rejects: a 1x1 conv and the
teacher map average-pooled to the student's size). Trained in the
same SGD optimizer as the student, in one stage with CE (RepDistiller trains FitNet in one
stage; Romero's original two-stage hint pre-training is not what the cited numbers used).
Published weight (CRD benchmark): beta = 100.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.engine.detops import adaptive_avg_pool2d

from .base import Distiller, taps, up


class ConvReg(nn.Module):
    """Maps a student map (C_s, H_s, W_s) onto the teacher's (C_t, H_t, W_t)."""

    def __init__(self, s_shape, t_shape, use_relu: bool = True):
        super().__init__()
        self.use_relu = use_relu  # AB's connectors end at the BatchNorm
        (cs, hs, ws), (ct, ht, wt) = s_shape[1:], t_shape[1:]
        if hs == 2 * ht:
            self.conv = nn.Conv2d(cs, ct, 3, stride=2, padding=1)
        elif 2 * hs == ht:
            self.conv = nn.ConvTranspose2d(cs, ct, 4, stride=2, padding=1)
        elif hs >= ht and ws >= wt:
            self.conv = nn.Conv2d(cs, ct, (1 + hs - ht, 1 + ws - wt))
        else:
            # Not in RepDistiller (which raises): a student map smaller than the teacher's but not
            # half of it (e.g. AlexNet's 7x7 against 8x8). A 1x1 conv, and the teacher map is
            # average-pooled to the student's size in the loss.
            self.conv = nn.Conv2d(cs, ct, 1)
        self.bn = nn.BatchNorm2d(ct)

    def forward(self, x):
        x = self.bn(self.conv(x))
        return torch.relu(x) if self.use_relu else x


class FitNet(Distiller):
    PARAMS = {"weight": 100.0, "hint_layer": 2}

    @classmethod
    def check(cls, params):
        super().check(params)
        if params["hint_layer"] < 0:
            raise ValueError(f"hint_layer must be >= 0, got {params['hint_layer']}")

    def __init__(self, student_probe, teacher_probe, num_classes, **params):
        super().__init__(student_probe, teacher_probe, num_classes, **params)
        self.layer = params["hint_layer"]
        s, t = taps(student_probe), taps(teacher_probe)
        if self.layer >= len(s) - 1 or self.layer >= len(t) - 1 or s[self.layer] is None or t[self.layer] is None:
            raise ValueError(f"hint_layer {self.layer} is not a feature map of both networks")
        self.regressor = ConvReg(s[self.layer].shape, t[self.layer].shape)

    def feature_loss(self, fs, ft, y, index):  # noqa: ARG002 (Distiller.feature_loss's signature)
        f_s, f_t = taps(fs)[self.layer], taps(ft)[self.layer]
        r = up(self.regressor(f_s))
        if r.shape[-2:] != f_t.shape[-2:]:  # only the 1x1 fall-back of ConvReg gets here
            f_t = adaptive_avg_pool2d(f_t, r.shape[-2:])
        return (r - up(f_t)).pow(2).mean()
