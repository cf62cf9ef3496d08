"""Feature-based distillation methods: a registry beside the logit losses of benchmark.engine.losses.

``make_distiller(name, student_probe, teacher_probe, num_classes, **params)`` returns an
``nn.Module`` whose ``forward(fs, ft, y, index)`` is the run's whole training loss

    ce_weight * CE + kd_weight * KD(tau) + weight * feature_term

(see ``base.py``); ``fs``/``ft`` are the student's / teacher's ``extract()`` dicts. Adapters
(regressors, embeddings, CRD's memory banks) are its parameters and buffers: the trainer puts
them in the student's optimizer and checkpoint. Methods with a pre-training stage (AB, FT,
FSP, IE-AT) return it from ``init_stages`` (see ``base.InitStage``); the trainer runs it first. Each module's docstring gives its paper's
equation, the features it taps and the published CRD-benchmark weight used as default.

A run config names a method as its loss (``loss: {name: fitnet, weight: 100}``);
:func:`resolve_params` validates and fills the parameters without building anything.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Distiller

# name -> (module, class). The classes (and torch) are imported on first use, so that planning and
# the cost model, which only ask whether a loss is a feature method, start without torch.
_DISTILLERS: dict[str, tuple[str, str]] = {
    "fitnet": ("fitnet", "FitNet"), "at": ("at", "AT"), "sp": ("sp", "SP"), "cc": ("cc", "CC"),
    "vid": ("vid", "VID"), "rkd": ("rkd", "RKD"), "pkt": ("pkt", "PKT"), "nst": ("nst", "NST"),
    "crd": ("crd", "CRD"), "sckd": ("sckd", "SCKD"), "ab": ("ab", "AB"), "ft": ("ft", "FT"),
    "fsp": ("fsp", "FSP"), "ieat": ("ieat", "IEAT"), "reviewkd": ("reviewkd", "ReviewKD"),
    "overhaul": ("overhaul", "Overhaul"),
}

__all__ = ["make_distiller", "distiller_names", "is_distiller", "distiller_defaults", "resolve_params",
           "Distiller", "InitStage", "taps"]


def __getattr__(name: str):  # Distiller, InitStage, taps: from base.py, on first use
    if name in ("Distiller", "InitStage", "taps"):
        return getattr(importlib.import_module(".base", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def distiller_names() -> list[str]:
    return list(_DISTILLERS)


def is_distiller(name: Any) -> bool:
    return isinstance(name, str) and name in _DISTILLERS


def _lookup(name: str) -> type[Distiller]:
    if name not in _DISTILLERS:
        raise ValueError(f"unknown feature distiller {name!r}; known: {', '.join(_DISTILLERS)}")
    module, cls = _DISTILLERS[name]
    return getattr(importlib.import_module(f".{module}", __name__), cls)


def distiller_defaults(name: str) -> dict[str, Any]:
    return _lookup(name).defaults()


def resolve_params(name: str, **params: Any) -> dict[str, Any]:
    """Every parameter of ``name`` with its value (given or default), types and values checked."""
    from benchmark.engine.losses import (
        _coerce,  # the logit losses' type rules: ints pass as floats, bools only as bools
    )

    defaults = distiller_defaults(name)
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"loss {name!r}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(defaults)}")
    # A None default (FT's init_lr: a rule on the student) takes a number when given.
    resolved = {k: None if d is None and params.get(k) is None
                else _coerce(name, k, params.get(k, d), 0.0 if d is None else d) for k, d in defaults.items()}
    try:
        _lookup(name).check(resolved)
    except ValueError as err:
        raise ValueError(f"loss {name!r}: {err}") from None
    return resolved


def make_distiller(name: str, student_probe: dict, teacher_probe: dict, num_classes: int, *,
                   train_labels=None, **params: Any) -> Distiller:
    """The distiller ``name`` with adapters shaped from the probe ``extract()`` dicts."""
    cls = _lookup(name)
    resolved = resolve_params(name, **params)
    extra = {"train_labels": train_labels} if cls.needs_train_labels else {}
    return cls(student_probe, teacher_probe, num_classes, **extra, **resolved)
