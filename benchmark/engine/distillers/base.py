"""What every feature distiller shares: the total loss, the KD term, feature taps, helpers.

A distiller is an ``nn.Module`` built from one *probe* forward of the student and of the
teacher (their ``extract()`` dicts on a tiny batch), so adapters get their shapes from the
real networks. ``weighted_terms(fs, ft, y, index)`` gets the ``extract()`` dicts of this batch (the
teacher's computed without grad) and returns the weighted terms ``{"ce", "kd", "feature"}`` (those
with a non-zero weight) whose sum, ``forward(fs, ft, y, index)``, is

    L = ce_weight * CE(z_s, y) + kd_weight * tau^2 * KL(p_t(tau) || p_s(tau)) + weight * feature_term

which is RepDistiller's ``loss = gamma * loss_cls + alpha * loss_div + beta * loss_kd``
(train_student.py; ``-r gamma -a alpha -b beta``). Defaults: CE weight 1, KD weight 0 and
each method's published weight ``-b`` in the CRD benchmark (RepDistiller README), KD tau 4.

Feature taps. RepDistiller's networks return ``feat = [stem, stage1, stage2, stage3, pooled]``
(VGG, ResNet50, MobileNetV2: five maps). Our models give the same list (without the pooled
vector) as ``extract()["taps"]`` (every model of RepDistiller's zoo: CIFAR ResNets, ResNet50, WRNs,
VGGs, MobileNetV2, ShuffleNetV1/V2); a model without it is read as ``[None, *stages]`` (no stem). :func:`taps` returns RepDistiller's full list, so a method's
docstring can say "feat[1:-1]" exactly as RepDistiller's train_student.py does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.engine import methods
from benchmark.engine.detops import adaptive_avg_pool2d
from benchmark.engine.losses import kd_term
from benchmark.engine.precision import upcast

BASE_PARAMS: dict[str, Any] = {"ce_weight": 1.0, "kd_weight": 0.0, "tau": 4.0}


# float32 for the loss math (bf16 under autocast is too coarse); every distiller imports it from here.
up = upcast


def taps(f: dict) -> list:
    """RepDistiller's ``feat`` list: [stem, intermediate maps..., pooled vector]."""
    maps = f.get("taps") or [None, *f["stages"]]
    return [*maps, f["penultimate"]]


def preact_taps(f: dict) -> list:
    """RepDistiller's ``feat`` list with ``preact=True``: the maps before their final ReLU."""
    if "preact_taps" not in f:
        raise ValueError("this network has no pre-activation feature taps (the RepDistiller-zoo CIFAR models and "
                         "torchvision ResNets do)")
    return [*f["preact_taps"], f["penultimate"]]


def feature_modules(student: nn.Module) -> list[nn.Module]:
    """RepDistiller's ``model_s.get_feat_modules()``: the model's ``feat_module_names`` where it
    names them (WRN, MobileNetV2, ShuffleNetV2 leave out their last BN or conv), else the student
    minus its final classifier."""
    names = getattr(student, "feat_module_names", None)
    if names is not None:
        return [getattr(student, n) for n in names]
    head = getattr(student, "classifier_name", None)
    return [m for name, m in student.named_children() if name != head]


@dataclass
class PretrainStage:
    """A pre-training stage, run before the main training (RepDistiller's ``init()``, used by
    AB, FT and FSP): ``epochs`` epochs of plain SGD at a constant ``lr`` (the recipe's momentum
    and weight decay) on the parameters of ``modules`` only, minimising ``loss(fs, ft, y)``.

    ``modules`` may hold the student's own layers (AB and FSP pre-train its feature layers).
    During the stage the student is in eval mode and ``modules`` in train mode (as RepDistiller).
    ``needs_student=False``: the student's forward is skipped and ``fs`` is None (FT trains a
    paraphraser of the teacher's features only)."""

    name: str
    epochs: int
    lr: float
    modules: list[nn.Module]
    loss: Callable[[dict | None, dict, torch.Tensor], torch.Tensor]
    needs_student: bool = True


def match_spatial(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Average-pool the larger of two maps to the smaller's size (RepDistiller's AT/NST/VID)."""
    if a.shape[-2:] == b.shape[-2:]:
        return a, b
    if a.shape[-1] > b.shape[-1]:
        return adaptive_avg_pool2d(a, b.shape[-2:]), b
    return a, adaptive_avg_pool2d(b, a.shape[-2:])


class Embed(nn.Module):
    """RepDistiller's Embed (CC, CRD): a linear map of the flattened feature, then L2-normalised."""

    def __init__(self, dim_in: int, dim_out: int = 128):
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x.flatten(1))
        return x / x.pow(2).sum(1, keepdim=True).pow(0.5)


class Distiller(nn.Module):
    """Base class: ``PARAMS`` (name -> default) are the method's options beyond BASE_PARAMS.

    Subclasses implement ``feature_loss(fs, ft, y, index)`` and may override
    ``check(params)`` (value checks that need no probe, run when the distiller is built; config
    time checks the options declared in benchmark/schema.py).

    A Method of benchmark/engine/methods: it declares taps, is its own ``adapters`` and returns its terms
    from ``loss_terms(step)``.
    """

    PARAMS: dict[str, Any] = {}
    taps = True                  # reads the networks' extract() dicts
    needs_teacher = True
    needs_index = False          # CRD: the samples' dataset indices
    needs_train_labels = False   # CRD: the labels of the whole training set (negatives)

    def __init__(self, student_probe: dict, teacher_probe: dict, num_classes: int, **params: Any):  # noqa: ARG002 (the probes shape the subclasses' adapters)
        super().__init__()
        self.params = params
        self.ce_weight, self.kd_weight, self.tau = params["ce_weight"], params["kd_weight"], params["tau"]
        self.weight = params["weight"]
        self.num_classes = num_classes

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {**BASE_PARAMS, **cls.PARAMS}

    @classmethod
    def check(cls, params: dict[str, Any]) -> None:
        for k in ("ce_weight", "kd_weight", "weight"):
            if not (params[k] >= 0 and math.isfinite(params[k])):
                raise ValueError(f"{k} must be finite and >= 0, got {params[k]!r}")
        if not (params["tau"] > 0 and math.isfinite(params["tau"])):
            raise ValueError(f"tau must be finite and > 0, got {params['tau']!r}")

    def attach(self, student: nn.Module) -> None:
        """Called once by the trainer with the student network (SCKD needs its parameters)."""

    def attach_teacher(self, teacher: nn.Module) -> None:
        """Called once by the trainer with the teacher network (Overhaul reads its BatchNorms)."""

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the trainer at the start of every main-training epoch (0-based ``epoch`` of
        ``epochs``), also the first one after a resume: a method whose loss follows the epoch
        (ReviewKD's warm-up, IE-AT's weight decay) sets it here. Nothing by default."""

    def pretrain_stages(self, student: nn.Module) -> list[PretrainStage]:  # noqa: ARG002 (the Method protocol's pretrain_stages)
        """Pre-training stages to run, in order, before the main training (none by default)."""
        return []

    def feature_loss(self, fs: dict, ft: dict, y: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    @property
    def adapters(self) -> nn.Module:
        """What the trainer optimises after the student and checkpoints: this module."""
        return self

    def logit_terms(self, fs: dict, ft: dict, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weighted "ce" and "kd" terms (those with a non-zero weight)."""
        z_s = up(fs["logits"])
        out = {}
        if self.ce_weight:
            out["ce"] = self.ce_weight * F.cross_entropy(z_s, y)
        if self.kd_weight:
            out["kd"] = self.kd_weight * kd_term(z_s, ft["logits"].detach(), self.tau)
        return out

    def weighted_terms(self, fs: dict, ft: dict, y: torch.Tensor,
                       index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The weighted terms ("ce", "kd", "feature"; those with a non-zero weight, in that order)."""
        out = self.logit_terms(fs, ft, y)
        if self.weight:
            out["feature"] = self.weight * self.feature_loss(fs, ft, y, index)
        return out

    def loss_terms(self, step: methods.Step) -> dict[str, torch.Tensor]:
        """The Method protocol: the terms of this step."""
        return self.weighted_terms(step.student_features, step.teacher_features, step.targets, step.index)

    def forward(self, fs: dict, ft: dict, y: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        # Summed from the first term: 0 + x is x exactly, so this is the old zeros-first sum bit for bit.
        return methods.total(self.weighted_terms(fs, ft, y, index))

    def terms(self, fs: dict, ft: dict, y: torch.Tensor, index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The weighted terms of ``forward`` ("ce", "kd", "feature"; those with a non-zero weight,
        detached) plus ``"total"``, the value ``forward`` returns (with its graph)."""
        parts = self.weighted_terms(fs, ft, y, index)
        return {**{k: v.detach() for k, v in parts.items()}, "total": methods.total(parts)}
