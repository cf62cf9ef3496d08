"""ReviewKD: knowledge review (Chen, Liu, Zhao & Jia, CVPR 2021), as in the authors' CIFAR-100 code.

Source: the public repository dvlab-research/ReviewKD, folder ``CIFAR-100/``:
``model/reviewkd.py`` (``ABF``, ``ReviewKD``, ``build_review_kd``, ``hcl``), ``train.py`` (the
loop: loss weight, warm-up, which features), ``script/reviewKD.sh`` (the per-pair loss weights),
``model/resnet_cifar.py`` and ``model/wide_resnet_cifar.py`` (the feature lists), ``util/misc.py``
(the learning-rate schedule). The ATS paper (App. D.3, Table 7 column "ReKD") ran this code.

Levels. The student's levels F_s^1..F_s^n, shallow to deep, are RepDistiller's feat list without
feat[0] (``taps(fs)[1:]``: every stage output after its ReLU, then the pooled vector); the
teacher's F_t^1..F_t^n are the same list with ``preact=True`` (``preact_taps(ft)[1:]``: the stage
outputs before their final ReLU; WRN: the next BatchNorm's output). train.py:
``teacher(images, is_feat=True, preact=True)`` then ``t_features[1:]``; the student wrapper calls
``student(x, is_feat=True)`` (preact=False) and its ABFs read feat[1:] (build_review_kd gives one
ABF per entry of ``in_channels``, and the stem f0 falls off the ``zip``). The pooled vector is
kept as an (N, C, 1, 1) map on both sides (``nn.AvgPool2d(8)`` / ``F.avg_pool2d(out, 8)`` in the
model files, never flattened): the deepest level, a 1x1 map. The teacher's pooled vector is the
ordinary one (after the ReLU; preact=True changes only the stage maps).

The paper's review mechanism in its residual form: the output matched to the teacher's level i
is built from the student's level i fused with the fused result of every deeper level, so each
teacher level supervises the student's level i and all deeper ones:

    L_review = sum_i D(O_i, F_t^i),   O_i from ABF(F_s^i, R_{i+1}),  R_{i+1} from F_s^{i+1..n}

with D the hierarchical context loss. The code's form of each piece:

Attention based fusion (ABF), from the deepest level up (``abfs`` reversed, ``results.insert(0)``):

    X_i = BN(Conv1x1(F_s^i))                                         (C_s^i -> m channels)
    R_n = X_n                                                        (deepest: no fusion)
    [A_i, B_i] = sigmoid(Conv1x1_{2m -> 2}([X_i ; up(R_{i+1})]))     (two H_i x W_i maps, with bias)
    R_i = A_i * X_i + B_i * up(R_{i+1})                              (i < n)
    O_i = BN(Conv3x3(resize(R_i)))                                   (m -> C_t^i channels)

``up`` is nearest interpolation of the deeper residual to level i's student size; ``resize``
nearest interpolation to the teacher's size at level i when it differs (R_i as resized is also
what level i-1 receives). m = min(512, C_s^n), the pooled vector's width. Conv3x3 has padding 1
(on the 1x1 deepest level only its centre tap acts); the convs have no bias, both get
``kaiming_uniform_(a=1)``; the attention conv keeps PyTorch's default init. The ABFs are the
adapters: trained by the student's optimizer, saved in the checkpoint.

Hierarchical context loss (HCL, ``hcl``), per level, between O = O_i and T = F_t^i (same shape):

    L_HCL(O, T) = [ MSE(O, T) + sum_k w_k MSE(P_{l_k}(O), P_{l_k}(T)) ] / (1 + sum_k w_k)

over the pyramid sizes l in (4, 2, 1) with l < H (the map's height), P_l adaptive average
pooling to l x l, MSE the mean over every element, w = 1/2, 1/4, 1/8 for the first, second,
third size used (a 4x4 map: l = 2, 1 with w = 1/2, 1/4; the 1x1 level: plain MSE). Then

    L_review = sum_i L_HCL(O_i, F_t^i)
    L = ce_weight * CE + weight * min(1, e / warmup_epochs) * L_review

with e the 0-based epoch (train.py: ``feature_kd_loss * min(1, epoch/args.kd_warm_up) *
args.kd_loss_weight``; ``--kd-warm-up`` 20, never overridden by the script). The trainer tells the
epoch through :meth:`ReviewKD.start_epoch` at the start of every epoch. In epoch 0 the factor is 0;
the loss is still computed (as there), so the ABFs get zero gradients rather than none: weight
decay and momentum still move them and their BatchNorm statistics still update. KD is off
(``--use-kl`` not given): ce_weight 1, kd_weight 0, our defaults.

Loss weight (``--kd-loss-weight``, script/reviewKD.sh), teacher -> student:
wrn_40_2 -> wrn_16_2: 5.0; wrn_40_2 -> wrn_40_1: 5.0; resnet32x4 -> resnet8x4: 5.0;
resnet56 -> resnet20: 0.6; resnet110 -> resnet32: 1.0; resnet32x4 / wrn_40_2 -> shufflev1: 5.0;
resnet32x4 -> shufflev2: 8.0 (:data:`PUBLISHED_WEIGHTS`). Not published, chosen here for the ATS
Table 7 pairs (:data:`CHOSEN_WEIGHTS`): resnet110 -> resnet20: 0.6, the weight the script gives
the resnet20 student (ReviewKD's adapter table is keyed by the student; 1.0, the resnet110
teacher's line, is the other reading); vgg13 -> vgg8: 1.0, train.py's default ``--kd-loss-weight``
(the public code has no VGG model: ``build_vgg_backbone``'s import is commented out, though
``build_review_kd`` has a VGG branch). The class default ``weight`` is that train.py default, 1.0;
:func:`reviewkd_weight` looks a pair up.

Where this differs from the code, and why:

* Adapter shapes come from the probes: in and mid channels from the student, out channels and
  sizes from the teacher. build_review_kd hard-codes them per student family (a WRN student always
  gets WRN-40-2's widths, a resnetNx4 student resnet32x4's, a CIFAR ResNet student 16/32/64); for
  every published pair and every ATS pair both agree (tests/test_reviewkd.py checks the tables).
* VGG: build_review_kd's VGG branch has five levels (f1, f2, f3, f4, pooled: in_channels
  [128, 256, 512, 512, 512]), as RepDistiller's vgg.py feature list [f0, f1, f2, f3, f4, f5] and
  our VGG ``taps`` give them.
* The teacher: train.py never calls ``teacher.eval()``, so the teacher's features (and its WRN
  preact BatchNorms) use the batch's statistics; our trainer runs the teacher in eval mode.
* Before the first :meth:`start_epoch` call the factor is 1 (no warm-up), so a caller that does not
  drive epochs (a unit test, a one-off loss evaluation) gets the full term.
* The loss is computed in float32 (``up``), inputs cast before the ABFs.
* HCL on non-square maps (none here): the pyramid test uses the height, as ``hcl`` does.

The recipe of train.py (not this module's to set; see the project's run configs): SGD lr 0.1
(0.02 for ShuffleNet/MobileNet students), momentum 0.9, Nesterov, weight decay 5e-4 on every
parameter, batch 128, 240 epochs, lr x0.1 applied after 0-based epochs 150, 180, 210 (so epochs
151, 181, 211 onward run decayed: milestones [151, 181, 211] in our 0-based ``lr_at``), normalise
with mean (125.3, 123.0, 113.9)/255 and std (63.0, 62.1, 66.7)/255, crop 32 pad 4 + flip, no
drop_last; the best test accuracy over epochs is what its log tracks (``best_acc``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.engine.detops import adaptive_avg_pool2d

from .base import Distiller, preact_taps, taps, up

MAX_MID_CHANNELS = 512   # build_review_kd: mid_channel = min(512, in_channels[-1])
PYRAMID = (4, 2, 1)      # hcl: the pooled sizes, each used only below the map's height

# script/reviewKD.sh: --kd-loss-weight per (teacher, student), in our model names.
PUBLISHED_WEIGHTS: dict[tuple[str, str], float] = {
    ("wrn_40_2", "wrn_16_2"): 5.0,
    ("wrn_40_2", "wrn_40_1"): 5.0,
    ("resnet32x4", "resnet8x4"): 5.0,
    ("resnet56", "resnet20"): 0.6,
    ("resnet110", "resnet32"): 1.0,
    ("resnet32x4", "shufflev1"): 5.0,
    ("wrn_40_2", "shufflev1"): 5.0,
    ("resnet32x4", "shufflev2"): 8.0,
}
# ATS Table 7 pairs the script does not run (see the module docstring for the reasons).
CHOSEN_WEIGHTS: dict[tuple[str, str], float] = {
    ("resnet110", "resnet20"): 0.6,
    ("vgg13", "vgg8"): 1.0,
}


def reviewkd_weight(teacher: str, student: str) -> float:
    """The loss weight for a pair: published, else chosen here; KeyError for other pairs."""
    key = (teacher, student)
    if key in PUBLISHED_WEIGHTS:
        return PUBLISHED_WEIGHTS[key]
    if key in CHOSEN_WEIGHTS:
        return CHOSEN_WEIGHTS[key]
    raise KeyError(f"no ReviewKD loss weight for {teacher} -> {student}")


def warmup_factor(epoch: int | None, warmup_epochs: float) -> float:
    """train.py's ``min(1, epoch / kd_warm_up)``; 1 with no warm-up or before any epoch is set."""
    if epoch is None or warmup_epochs == 0:
        return 1.0
    return min(1.0, epoch / warmup_epochs)


def as_map(f: torch.Tensor) -> torch.Tensor:
    """A pooled vector (N, C) as the (N, C, 1, 1) map ReviewKD's models return; maps unchanged."""
    return f[:, :, None, None] if f.dim() == 2 else f


def hcl_level(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """L_HCL of one level: full-resolution MSE plus pyramid MSEs weighted 1/2, 1/4, 1/8, normalised."""
    height = o.shape[-2]
    loss = F.mse_loss(o, t)
    w, w_sum = 1.0, 1.0
    for size in PYRAMID:
        if size >= height:
            continue
        w /= 2
        w_sum += w
        loss = loss + w * F.mse_loss(adaptive_avg_pool2d(o, size), adaptive_avg_pool2d(t, size))
    return loss / w_sum


def hcl(outs: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    """Sum over the levels of :func:`hcl_level`."""
    if len(outs) != len(targets):
        raise ValueError(f"hcl: {len(outs)} student outputs against {len(targets)} teacher features")
    return sum(hcl_level(o, t) for o, t in zip(outs, targets, strict=True))


class ABF(nn.Module):
    """Attention based fusion of one level: ``forward(x, residual, out_size) -> (O_i, R_i)``."""

    def __init__(self, c_in: int, c_mid: int, c_out: int, fuse: bool):
        super().__init__()
        self.reduce = nn.Sequential(nn.Conv2d(c_in, c_mid, 1, bias=False), nn.BatchNorm2d(c_mid))
        self.project = nn.Sequential(nn.Conv2d(c_mid, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out))
        self.attention = nn.Conv2d(2 * c_mid, 2, 1) if fuse else None
        nn.init.kaiming_uniform_(self.reduce[0].weight, a=1)
        nn.init.kaiming_uniform_(self.project[0].weight, a=1)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None,
                out_size: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.reduce(x)
        if self.attention is not None:
            if residual is None:
                raise ValueError("a fusing ABF needs the deeper level's residual")
            residual = F.interpolate(residual, size=tuple(x.shape[-2:]), mode="nearest")
            a = torch.sigmoid(self.attention(torch.cat([x, residual], dim=1)))
            x = x * a[:, 0:1] + residual * a[:, 1:2]
        if out_size is not None and tuple(x.shape[-2:]) != tuple(out_size):
            x = F.interpolate(x, size=tuple(out_size), mode="nearest")
        return self.project(x), x


def student_levels(f: dict) -> list[torch.Tensor]:
    """feat[1:] after the ReLUs: the stage maps, then the pooled vector as a 1x1 map."""
    return [as_map(up(x)) for x in taps(f)[1:]]


def teacher_levels(f: dict) -> list[torch.Tensor]:
    """feat[1:] with preact=True: the stage maps before their final ReLU, then the pooled vector."""
    return [as_map(up(x.detach())) for x in preact_taps(f)[1:]]


class ReviewKD(Distiller):
    """ReviewKD's review loss over ABF-fused student features (module docstring).

    ``start_epoch(epoch, epochs)`` (0-based, called by the trainer at the start of every epoch) drives the
    warm-up of the loss weight over the first ``warmup_epochs`` epochs (0: none)."""

    PARAMS = {"weight": 1.0, "warmup_epochs": 20.0}

    @classmethod
    def check(cls, params):
        super().check(params)
        w = params["warmup_epochs"]
        if not (isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0):
            raise ValueError(f"warmup_epochs must be finite and >= 0, got {w!r}")

    def __init__(self, student_probe, teacher_probe, num_classes, **params):
        super().__init__(student_probe, teacher_probe, num_classes, **params)
        self.check({**self.defaults(), **params})
        self.warmup_epochs = float(params["warmup_epochs"])
        self.epoch: int | None = None
        s, t = student_levels(student_probe), teacher_levels(teacher_probe)
        if len(s) != len(t):
            raise ValueError(f"reviewkd: the student has {len(s)} feature levels, the teacher {len(t)}")
        if len(s) < 1:
            raise ValueError("reviewkd: no feature levels to distil")
        mid = min(MAX_MID_CHANNELS, s[-1].shape[1])
        n = len(s)
        self.abfs = nn.ModuleList(ABF(a.shape[1], mid, b.shape[1], fuse=i < n - 1)
                                  for i, (a, b) in enumerate(zip(s, t)))

    def start_epoch(self, epoch: int, epochs: int) -> None:  # noqa: ARG002 (the Method protocol's start_epoch)
        """The 0-based epoch about to run sets the warm-up factor."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
        self.epoch = epoch

    def warmup(self) -> float:
        """The loss-weight factor of the current epoch, min(1, epoch / warmup_epochs)."""
        return warmup_factor(self.epoch, self.warmup_epochs)

    def fuse(self, fs: dict, target_sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
        """O_1..O_n (shallow to deep): the ABF chain run from the deepest level up."""
        feats = student_levels(fs)
        outs: list[torch.Tensor] = [None] * len(feats)  # type: ignore[list-item]
        residual = None
        for i in reversed(range(len(feats))):
            outs[i], residual = self.abfs[i](feats[i], residual, target_sizes[i])
        return outs

    def feature_loss(self, fs, ft, y, index):  # noqa: ARG002 (Distiller.feature_loss's signature)
        targets = teacher_levels(ft)
        outs = self.fuse(fs, [tuple(t.shape[-2:]) for t in targets])
        return hcl(outs, targets)

    def weighted_terms(self, fs, ft, y, index=None):
        out = self.logit_terms(fs, ft, y)
        if self.weight:
            # computed even at factor 0 (epoch 0): zero gradients, as train.py's product gives
            out["feature"] = (self.weight * self.warmup()) * self.feature_loss(fs, ft, y, index)
        return out
