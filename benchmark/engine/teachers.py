"""The frozen teacher of a run: a finished run of the store, torchvision's published weights, or
a checkpoint file pinned by its sha256; loaded strictly into its architecture, in eval mode."""

from __future__ import annotations

from pathlib import Path

import torch

from ..store.layout import MODEL, Store
from .data import get_spec
from .models import build_model
from .models.weights import RefusedPickle, load_file, sha256_of, unwrap_state_dict
from .train_errors import RunFailed


def load_teacher(cfg: dict, store: Store, device) -> torch.nn.Module | None:
    """The frozen teacher, in eval mode: a finished run of the store, or a checkpoint file."""
    teacher = cfg["teacher"]
    if teacher is None:
        return None
    num_classes = get_spec(cfg["dataset"]).num_classes
    if "run" in teacher:
        teacher_id = teacher["run"]
        if not store.is_done(teacher_id):
            raise RunFailed(f"teacher run {teacher_id} is not finished in {store.root}")
        teacher_cfg = store.config(teacher_id)
        if teacher_cfg["dataset"] != cfg["dataset"]:
            raise RunFailed(f"teacher run {teacher_id} was trained on {teacher_cfg['dataset']}, "
                            f"not {cfg['dataset']}")
        model = build_model(teacher_cfg["model"], num_classes)
        state = torch.load(store.run_file(teacher_id, MODEL), map_location="cpu", weights_only=True)
    elif "torchvision" in teacher:  # torchvision's published weights, in torch.hub's cache
        from .hub import local_file

        try:
            path = local_file(teacher)
        except ValueError as err:
            raise RunFailed(str(err)) from None
        model = build_model(teacher["model"], num_classes)
        state = _weights_in(torch.load(path, map_location="cpu", weights_only=True), path)
    else:
        path = teacher["checkpoint"]
        if not Path(path).is_file():
            raise RunFailed(f"teacher checkpoint {path} does not exist")
        if sha256_of(path) != teacher["sha256"]:
            raise RunFailed(f"teacher checkpoint {path} does not match its sha256 {teacher['sha256']}")
        model = build_model(teacher["model"], num_classes)
        try:
            obj = load_file(path)  # RepDistiller's *_last.pth files hold an argparse Namespace
        except RefusedPickle as err:  # final: trying again cannot help
            raise RunFailed(f"teacher checkpoint {path}: refused: {err}") from None
        state = _weights_in(obj, path)
    model.load_state_dict(state)  # strict: a teacher must match its architecture exactly
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _weights_in(obj, path) -> dict:
    try:
        return unwrap_state_dict(obj, strict=False, source=str(path))
    except ValueError as err:
        raise RunFailed(str(err)) from None
