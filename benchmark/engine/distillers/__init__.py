"""Feature-based distillation methods beside the logit losses of benchmark.losses.

``make_distiller(name, student_probe, teacher_probe, num_classes, **params)`` returns an
``nn.Module`` whose ``forward(fs, ft, y, index)`` is the run's whole training loss

    ce_weight * CE + kd_weight * KD(tau) + weight * feature_term

(see ``base.py``); ``fs``/``ft`` are the student's / teacher's ``extract()`` dicts. A distiller is
a Method of benchmark/engine/methods (the one registry, which names each distiller's class here): it
declares taps, returns its terms from ``loss_terms(step)`` and is its own ``adapters`` (regressors,
embeddings, CRD's memory banks): the trainer puts them in the student's optimizer and checkpoint.
Methods with a pre-training stage (AB, FT, FSP, IE-AT) return it from ``pretrain_stages`` (see
``base.PretrainStage``); the trainer runs it first. Each module's docstring gives its paper's
equation, the features it taps and the published CRD-benchmark weight used as default.

A run config names a method as its loss (``loss: {name: fitnet, weight: 100}``);
:func:`resolve_params` validates and fills the parameters without building anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from benchmark.engine import methods

if TYPE_CHECKING:
    from .base import Distiller

__all__ = ["make_distiller", "distiller_names", "distiller_defaults", "resolve_params", "build_method",
           "Distiller", "PretrainStage", "taps"]


def __getattr__(name: str):  # Distiller, PretrainStage, taps: from base.py, on first use
    if name in ("Distiller", "PretrainStage", "taps"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def distiller_names() -> list[str]:
    return methods.names(taps=True)


def _lookup(name: str) -> type[Distiller]:
    """The distiller's class (importing it, and torch)."""
    if name not in distiller_names():
        raise ValueError(f"unknown feature distiller {name!r}; known: {', '.join(distiller_names())}")
    return methods.load(methods.entry(name).code)


def distiller_defaults(name: str) -> dict[str, Any]:
    return _lookup(name).defaults()


def resolve_params(name: str, **params: Any) -> dict[str, Any]:
    """Every parameter of ``name`` with its value (given or default), checked against the declared
    schema (benchmark/schema.py; no torch)."""
    if name not in distiller_names():
        raise ValueError(f"unknown feature distiller {name!r}; known: {', '.join(distiller_names())}")
    return methods.resolve(name, params)


def build_method(entry: methods.Entry, name: str, cls: type[Distiller], params: dict[str, Any], *,  # noqa: ARG001 (the registry's builder signature (methods.build))
                 student_probe: dict, teacher_probe: dict, num_classes: int, train_labels=None) -> Distiller:
    """The registry's builder of a feature method (benchmark/engine/methods): adapters shaped from the probe
    ``extract()`` dicts; ``params`` already resolved."""
    cls.check(params)  # the class's own guard (the schema's declared checks already passed)
    extra = {"train_labels": train_labels} if cls.needs_train_labels else {}
    return cls(student_probe, teacher_probe, num_classes, **extra, **params)


def make_distiller(name: str, student_probe: dict, teacher_probe: dict, num_classes: int, *,
                   train_labels=None, **params: Any) -> Distiller:
    """The distiller ``name`` with adapters shaped from the probe ``extract()`` dicts."""
    _lookup(name)
    return methods.build(name, params, student_probe=student_probe, teacher_probe=teacher_probe,
                         num_classes=num_classes, train_labels=train_labels)
