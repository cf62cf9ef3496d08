"""Initial weights of a student: the network's own initialisation, or a paper code's re-initialisation.

``recipe.init_scheme`` names one (a reading of the papers, recorded in every run's config):

- ``torch``: the weights the network's constructor draws (``benchmark/engine/models``; e.g. VGG's
  classifier ``W ~ N(0, 0.01^2)``, as RepDistiller's VGG). The default.
- ``ats_code``: what the ATS authors' code does (lxcnju/ATS-LargeKD). ``train_distill_ats.py:73``
  builds the student and then calls ``s_model.apply(weights_init)`` (``utils.py:122-142``, commit 8a770e7);
  ``train_classify.py`` (teachers, and students trained with CE alone) never calls it. So a run
  WITH a teacher is re-initialised, module by module:

  - ``Conv1d`` / ``Conv2d``: ``W ~ N(0, 2 / fan_out)``, ``fan_out = out_channels * prod(kernel)``
    (kaiming normal, mode fan_out, ReLU gain); bias 0;
  - ``BatchNorm2d`` / ``GroupNorm``: weight 1, bias 0 (running statistics untouched);
  - ``Linear``: ``W ~ N(0, 2 / fan_in)``, ``fan_in = in_features`` (torch's kaiming normal
    defaults: mode fan_in, leaky_relu with slope 0, i.e. gain sqrt(2)); bias 0.

  Every other module keeps its own initialisation. A run without a teacher resolves to ``torch``
  (``effective_scheme``), so the scheme can sit in a recipe shared by teachers, CE students and
  distilled students, and its config says what actually ran.

For VGG8 (a 512 -> C classifier) the difference is the classifier: std sqrt(2/512) = 0.0625
under ``ats_code`` against 0.01 (convolutions and BN are drawn from the same distributions).

``recipe.zero_init_residual`` (default false; the smoke profile sets it, benchmark/catalog/profiles.py)
then sets the weight of the last BatchNorm of every residual branch to 0 (Goyal et al. 2017,
torchvision's ``zero_init_residual``): each block starts as its shortcut. In the ResNets' blocks (the
CIFAR BasicBlock and Bottleneck, torchvision's BasicBlock and Bottleneck); other networks are unchanged.
A CIFAR ResNet110 starts at a loss near 6.3 nats on 100 classes without it (a sum of 54 branches)
and stayed at chance through the smoke profile's two short epochs; with it, 28 % (measured).
"""

from __future__ import annotations

import sys

INIT_SCHEMES = ("torch", "ats_code")


def effective_scheme(scheme: str, has_teacher: bool) -> str:
    """The scheme a run actually gets: ``ats_code`` re-initialises distilled students only."""
    return scheme if (scheme != "ats_code" or has_teacher) else "torch"


def _ats_code_module(m) -> None:
    from torch import nn  # imported here: config validation (and --help) must not pay for torch

    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if m.bias is not None:
            m.bias.zero_()
    elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
        if m.weight is not None:  # affine=False has no parameters to set
            m.weight.fill_(1.0)
            m.bias.zero_()
    elif isinstance(m, nn.Linear):
        nn.init.kaiming_normal_(m.weight)  # fan_in, gain sqrt(2): the code calls it without options
        if m.bias is not None:
            m.bias.zero_()


def apply_init_scheme(model, scheme: str):
    """Re-initialise ``model`` in place under ``scheme`` (draws from torch's global generator)."""
    import torch

    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; known: {', '.join(INIT_SCHEMES)}")
    if scheme == "ats_code":
        with torch.no_grad():
            model.apply(_ats_code_module)
    return model


def zero_residual_norms(model) -> int:
    """Set the weight of the last BatchNorm of each ResNet residual branch to 0; how many were set."""
    import torch

    from .models.cifar_resnet import BasicBlock as CifarBasicBlock
    from .models.cifar_resnet50 import Bottleneck as CifarBottleneck

    last = {CifarBasicBlock: "bn2", CifarBottleneck: "bn3"}
    # torchvision's blocks exist only once torchvision is imported (by building one of its networks):
    # looked up, not imported, so that a run of the CIFAR networks does not import torchvision
    tv_resnet = sys.modules.get("torchvision.models.resnet")
    if tv_resnet is not None:
        last.update({tv_resnet.BasicBlock: "bn2", tv_resnet.Bottleneck: "bn3"})
    count = 0
    with torch.no_grad():
        for m in model.modules():
            name = last.get(type(m))
            if name is not None:
                getattr(m, name).weight.zero_()
                count += 1
    return count
