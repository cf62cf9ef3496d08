"""What the pre-training methods (AB, FT, FSP, IE-AT) share: the stage's parameters and checks.

RepDistiller (helper/pretrain.py ``init``) runs ``--init_epochs 30`` epochs of SGD (its
``--learning_rate``, 0.05, and the recipe's momentum and weight decay; constant rate) on the
stage's modules before the main training; FT with a CIFAR ResNet or WRN student uses lr 0.01.
The profiles shrink ``init_epochs`` as they shrink the recipe's epochs (benchmark.plan).
"""

from __future__ import annotations

import math

from .base import BASE_PARAMS, Distiller

STAGE_PARAMS = {"init_epochs": 30, "init_lr": 0.05}


def check_stage(params: dict) -> None:
    if params["init_epochs"] < 0:
        raise ValueError(f"init_epochs must be >= 0, got {params['init_epochs']}")
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
