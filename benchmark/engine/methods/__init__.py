"""Every training method behind one protocol, and the one registry of them.

A method is a logit loss (engine/losses.py), a feature distiller (engine/distillers/) or a
method of its own file here (DKD, ``dkd.py``; ATS's ILS, ``ils.py``). Whatever it is, it is

- **built once from its options**, checked against the declared schema (benchmark/schema.py:
  kinds, bounds and the rules between options) by :func:`resolve`, which needs no torch;
- **called per step** with one :class:`Step` (student and teacher logits, the targets, the epoch
  and the progress within it, and the networks' ``extract()`` dicts when it declares taps):
  ``method.loss_terms(step)`` returns its named, weighted loss terms ``{name: tensor}``; the loss
  is their sum (:func:`total`, in the order given) and the trainer logs every term;
- **asked what it needs** instead of being told apart by kind: ``taps`` (the feature taps of both
  networks, and adapters shaped by one probe forward), ``needs_index`` (the samples' dataset
  indices), ``adapters`` (an ``nn.Module`` of trained adapters and buffers, or None), its
  pre-training stages (``pretrain_stages(student)``), its per-epoch hook (``start_epoch``), ``train()``.

The registry below is the only place that knows which code builds which method. Adding a method is
one file (its loss, docstring with the paper's equation, its builder) plus one line here, and its
options with defaults in benchmark/schema.py (a new option at its default moves no run id).

Imports only the schema when loaded (planning, the command line and config checks start without
torch); the methods' code is imported by name on first :func:`build`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from benchmark import schema

__all__ = ["Entry", "REGISTRY", "Step", "build", "entry", "names", "pretraining_epochs", "resolve", "total"]


@dataclass(frozen=True)
class Entry:
    """How a method is built and what it needs, known before anything is built.

    ``code``: "module:attr", a logit loss's terms function ``fn(z_s, z_t, y, **options) -> {name:
    tensor}`` or a feature distiller's class (``distillers/base.py``); ``builder``: the function
    that makes the Method from it (``builder(entry, name, code, options, **networks)``)."""
    code: str
    builder: str = "benchmark.engine.losses:build_method"
    taps: bool = False          # reads both networks' feature taps; adapters shaped by a probe forward
    needs_teacher: bool = True
    stages: bool = False        # pre-training stages of ``init_epochs`` epochs before epoch 0

    @property
    def schedulable(self) -> bool:
        """Whether ``recipe.loss_schedule`` may set its options per epoch: a method without taps
        holds no trained state, so the trainer rebuilds it from the epoch's options."""
        return not self.taps


def _feature(module: str, cls: str, stages: bool = False) -> Entry:
    return Entry(f"benchmark.engine.distillers.{module}:{cls}", "benchmark.engine.distillers:build_method",
                 taps=True, stages=stages)


REGISTRY: dict[str, Entry] = {
    "ce": Entry("benchmark.engine.losses:ce_terms", needs_teacher=False),
    "ls": Entry("benchmark.engine.losses:ls_terms", needs_teacher=False),
    "kd": Entry("benchmark.engine.losses:kd_terms"),
    "ats": Entry("benchmark.engine.losses:ats_terms"),
    "atkd": Entry("benchmark.engine.losses:atkd_terms"),
    "mse": Entry("benchmark.engine.losses:mse_terms"),
    "label_match": Entry("benchmark.engine.losses:label_match_terms"),
    "dkd": Entry("benchmark.engine.methods.dkd:dkd_terms"),
    "ils": Entry("benchmark.engine.methods.ils:ils_terms"),
    "fitnet": _feature("fitnet", "FitNet"), "at": _feature("at", "AT"), "sp": _feature("sp", "SP"),
    "cc": _feature("cc", "CC"), "vid": _feature("vid", "VID"), "rkd": _feature("rkd", "RKD"),
    "pkt": _feature("pkt", "PKT"), "nst": _feature("nst", "NST"), "crd": _feature("crd", "CRD"),
    "sckd": _feature("sckd", "SCKD"), "ab": _feature("ab", "AB", stages=True), "ft": _feature("ft", "FT", stages=True),
    "fsp": _feature("fsp", "FSP", stages=True), "ieat": _feature("ieat", "IEAT", stages=True),
    "reviewkd": _feature("reviewkd", "ReviewKD"), "overhaul": _feature("overhaul", "Overhaul"),
}


@dataclass
class Step:
    """What a method sees at one training step. ``epoch`` is 0-based (None outside training: a
    method with a warm-up then applies its full weight); ``progress`` in [0, 1) is the fraction of
    the epoch's steps done before this one; the features are the networks' ``extract()`` dicts
    (None unless the method declares taps); ``index``: the samples' dataset indices (CRD)."""
    student_logits: Any
    teacher_logits: Any
    targets: Any
    epoch: int | None = None
    progress: float = 0.0
    student_features: dict | None = None
    teacher_features: dict | None = None
    index: Any = None


def names(*, taps: bool | None = None) -> list[str]:
    """The registered methods (only those with or without taps, if asked)."""
    return [n for n, e in REGISTRY.items() if taps is None or e.taps == taps]


def entry(name: Any) -> Entry:
    """The method's entry; ValueError naming the known ones."""
    if not isinstance(name, str) or name not in REGISTRY:
        logit, feature = ", ".join(names(taps=False)), ", ".join(names(taps=True))
        raise ValueError(f"unknown loss {name!r}; known: {logit}; feature-based: {feature}")
    return REGISTRY[name]


def resolve(name: str, options: dict) -> dict:
    """Every option of method ``name``, given or default, checked against the declared schema
    (kinds, bounds, rules between options); ValueError saying what is wrong. No torch."""
    entry(name)
    return schema.check_method_options(name, options)


def load(target: str):
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def build(name: str, options: dict, **networks: Any):
    """The method ``name`` built from its options (checked by :func:`resolve`). A method with taps
    needs ``networks``: ``student_probe``, ``teacher_probe`` (``extract()`` dicts of one probe
    batch), ``num_classes`` and ``train_labels``."""
    e = entry(name)
    return load(e.builder)(e, name, load(e.code), resolve(name, options), **networks)


def total(terms: dict):
    """The loss: the terms summed in their order (so a method's total is the same operations, in
    the same order, as its own sum)."""
    out = None
    for value in terms.values():
        out = value if out is None else out + value
    if out is None:
        raise ValueError("a method returned no loss terms")
    return out


def pretraining_epochs(loss: dict) -> int:
    """Epochs of the method's pre-training stages (what the cost model adds); 0 without stages."""
    return loss.get("init_epochs", 0) if entry(loss["name"]).stages else 0
