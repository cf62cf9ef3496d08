"""A finished run's logits on its un-augmented training set, for the figures that analyse them.

ATS computes its teacher analyses over the training samples (ats.txt:190, 566-568: "the 50K
training samples"), while a run keeps only its test logits. They are computed here from the run's
saved final model (``model.pt``), only for the runs a figure names, and kept in the store's area
for derived files, ``<store>/derived/<run id>/train_logits.pt`` (outside the immutable run folder),
as float16 with the labels (CIFAR: 50,000 x 100 x 2 bytes = 10 MB). Nothing is retrained; a
second figure reads the file. float16 keeps about three significant digits of each logit, enough
for histograms and averages over the training set; the softmax itself is taken in float32.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import Failed

FILE = "train_logits.pt"


def path_of(store, rid: str) -> Path:
    return store.derived_dir(rid) / FILE


def train_logits(store, rid: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits float32 (N, C), labels (N,)) of a finished run on its training set, computed once."""
    path = path_of(store, rid)
    if path.exists():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            return saved["logits"].float(), saved["labels"]
        except Exception:  # a torn or damaged file: derived, so computed again
            pass
    logits, labels = _evaluate(store, rid)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{FILE}.{os.getpid()}.tmp")
    torch.save({"logits": logits.half(), "labels": labels, "run": rid}, tmp)
    os.replace(tmp, path)
    return logits.half().float(), labels


def finished_model(store, rid: str, purpose: str):
    """(model in eval mode, config) of a finished run, from its saved final weights (``model.pt``);
    Failed naming the run when it has none. ``purpose`` says what the model was wanted for."""
    from ..engine.data import get_spec
    from ..engine.models import build_model
    from ..store.layout import MODEL

    result = store.result(rid) or {}
    cfg = store.config(rid) or result.get("config")
    weights = store.run_file(rid, MODEL)
    if result.get("status") != "done" or cfg is None or not weights.exists():
        raise Failed(f"run {rid}: no finished model to compute its {purpose} from")
    model = build_model(cfg["model"], get_spec(cfg["dataset"]).num_classes)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval(), cfg


def _evaluate(store, rid: str) -> tuple[torch.Tensor, torch.Tensor]:
    from ..engine.assembly import build_pipeline
    from ..engine.evaluation import evaluate
    from ..engine.execution import ExecOptions

    model, cfg = finished_model(store, rid, "training-set logits")
    ev = evaluate(model, build_pipeline(cfg, ExecOptions(num_workers=0)).train_eval_batches())
    return ev["logits"].cpu(), ev["labels"].cpu()
