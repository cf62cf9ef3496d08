"""The SGD optimizers of a run: the main one (the model, and a distiller's adapters after it) and
the one of a pre-training stage (its modules only, at the stage's constant rate)."""

from __future__ import annotations

import torch

from . import accel
from .accel import Accel


def make_optimizer(model: torch.nn.Module, recipe: dict, accel_opts: Accel = Accel()) -> torch.optim.SGD:
    """The recipe's SGD over the trainable parameters of ``model``."""
    opt = recipe["optimizer"]
    if opt["wd_on_bn_bias"]:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    else:
        # The KL-MSE code: no weight decay on BN parameters and biases (all 1-d tensors).
        decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
        no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
        groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=opt["lr"], momentum=opt["momentum"], nesterov=opt["nesterov"],
                           weight_decay=opt["weight_decay"], **accel.sgd_flags(accel_opts))


def stage_optimizer(modules: list[torch.nn.Module], lr: float, recipe: dict,
                    accel_opts: Accel = Accel()) -> tuple[torch.optim.SGD, list[torch.nn.Parameter]]:
    """RepDistiller's init(): plain SGD at ``lr`` with the recipe's momentum and weight decay, on
    the trainable parameters of ``modules`` (each once, in order). Returns it and those parameters."""
    params = list({id(p): p for m in modules for p in m.parameters() if p.requires_grad}.values())
    o = recipe["optimizer"]
    return torch.optim.SGD(params, lr=lr, momentum=o["momentum"], weight_decay=o["weight_decay"],
                           **accel.sgd_flags(accel_opts)), params
