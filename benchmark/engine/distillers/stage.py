"""What the pre-training methods (AB, FT, FSP, IE-AT) share: the stage's parameters and checks.

RepDistiller (helper/pretrain.py ``init``) runs ``--init_epochs 30`` epochs of SGD (its
``--learning_rate``, 0.05, and the recipe's momentum and weight decay; constant rate) on the
stage's modules before the main training; FT with a CIFAR ResNet or WRN student uses lr 0.01
(pretrain.py l. 22-27), and RepDistiller's --learning_rate is itself 0.01 for MobileNetV2,
ShuffleV1 and ShuffleV2 students (train_student.py l. 93-94). FT's default ``init_lr`` (None)
applies that rule to the student (ft.py); AB's and FSP's default is 0.05, so a MobileNetV2 or
ShuffleNet student needs ``init_lr: 0.01`` written out to match RepDistiller.
The profiles shrink ``init_epochs`` as they shrink the recipe's epochs (benchmark.catalog.plan).
"""

from __future__ import annotations

import math

from .base import BASE_PARAMS, Distiller

STAGE_PARAMS = {"init_epochs": 30, "init_lr": 0.05}


def check_stage(params: dict) -> None:
    if params["init_epochs"] < 0:
        raise ValueError(f"init_epochs must be >= 0, got {params['init_epochs']}")
    if params["init_lr"] is None:  # a method whose default rate follows a rule on the student (FT)
        return
    if not (params["init_lr"] > 0 and math.isfinite(params["init_lr"])):
        raise ValueError(f"init_lr must be finite and > 0, got {params['init_lr']!r}")


class StagedDistiller(Distiller):
    """A method with a pre-training stage: ``init_epochs`` and ``init_lr`` among its parameters
    (STAGE_PARAMS unless its own PARAMS say otherwise), checked with the others."""

    @classmethod
    def defaults(cls):
        return {**BASE_PARAMS, **STAGE_PARAMS, **cls.PARAMS}

    @classmethod
    def check(cls, params):
        super().check(params)
        check_stage(params)
