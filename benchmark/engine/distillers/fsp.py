"""Flow of solution procedure (Yim et al., CVPR 2017), as in the CRD benchmark (``--distill fsp``).

The FSP matrix of two maps F1 (C1 x H x W) and F2 (C2 x H x W) of one network (the larger
average-pooled to the smaller's size) is G_ij = 1/(HW) sum_hw F1_i,hw * F2_j,hw (Yim Eq. 1);
over consecutive pairs of RepDistiller's feature list without the pooled vector
(feat[:-1] = [stem, stage1, stage2, stage3]):

    L_FSP = sum_k mean_{b,i,j} (G_s^k(b)_ij - G_t^k(b)_ij)^2              (Yim Eq. 2, mean form)

which needs the student's and the teacher's taps to have the same channel counts (RepDistiller
raises otherwise: the reason the CRD table prints '-' for WRN-40-2/WRN-40-1).
A pre-training stage only, as RepDistiller runs it: ``init_epochs`` (30) epochs at ``init_lr``
(0.05) training the student's feature layers (RepDistiller's ``get_feat_modules()``: a WRN's
final bn1 is not among them and stays in eval mode) on L_FSP, unweighted; the main stage has
``loss_kd = 0`` (CE, and KD if kd_weight > 0). ``weight`` (-b 50) is recorded, multiplies nothing.
"""

from __future__ import annotations

import torch

from benchmark.engine.detops import adaptive_avg_pool2d

from .base import PretrainStage, feature_modules, taps, up
from .stage import StagedDistiller


def fsp_matrix(bottom: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """(B, C_top, C_bottom): mean over positions of top_i * bottom_j."""
    if bottom.shape[-1] > top.shape[-1]:
        bottom = adaptive_avg_pool2d(bottom, top.shape[-2:])
    elif bottom.shape[-1] < top.shape[-1]:
        top = adaptive_avg_pool2d(top, bottom.shape[-2:])
    return torch.einsum("bihw,bjhw->bij", up(top), up(bottom)) / (top.shape[-1] * top.shape[-2])


def fsp_matrices(maps: list) -> list:
    return [fsp_matrix(a, b) for a, b in zip(maps[:-1], maps[1:])]


class FSP(StagedDistiller):
    PARAMS = {"weight": 50.0}

    def __init__(self, student_probe, teacher_probe, num_classes, **params):
        super().__init__(student_probe, teacher_probe, num_classes, **params)
        s, t = taps(student_probe)[:-1], taps(teacher_probe)[:-1]
        if any(m is None for m in s + t):
            raise ValueError("fsp needs the stem's feature map (CIFAR ResNets, WRNs and VGGs have it)")
        if [m.shape[1] for m in s] != [m.shape[1] for m in t]:
            raise ValueError(f"fsp needs equal channel counts; student {[m.shape[1] for m in s]}, "
                             f"teacher {[m.shape[1] for m in t]}")

    def stage_loss(self, fs, ft, y):  # noqa: ARG002 (PretrainStage.loss's signature)
        pairs = zip(fsp_matrices(taps(fs)[:-1]), fsp_matrices(taps(ft)[:-1]))
        return sum((g_s - g_t).pow(2).mean() for g_s, g_t in pairs)

    def pretrain_stages(self, student):
        return [PretrainStage("fsp-student", self.params["init_epochs"], self.params["init_lr"],
                          feature_modules(student), self.stage_loss)]

    def feature_loss(self, fs, ft, y, index):  # noqa: ARG002 (Distiller.feature_loss's signature)
        return up(fs["logits"]).new_zeros(())
