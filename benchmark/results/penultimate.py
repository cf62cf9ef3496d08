"""A finished run's penultimate-layer features (the input of its final linear layer), for LS-KD's
analyses (Table 3, Table K.1, Fig. 1: lskd.txt:52-90, App. F, G, K).

Computed once from the run's saved model (``model.pt``) on its un-augmented training and test
(ImageNet: val) splits, only for the runs an analysis names, into the store's derived area,
``<store>/derived/<run id>/penultimate.pt``, beside ``train_logits.pt``:

- per split, the centroid of every class (float32, over all its samples; Table 3's centroids) and
  the sample counts;
- per split, the features of the first ``per_class`` samples of each *named* class in the split's
  order (float16; the authors' visualisation takes the first 150 training and 50 validation samples
  of each class in folder order: alpha-LS-KD_imagenet_centroids.py:86-90, data_loader_imagenet.py:147,
  lskd.txt:203), what App. K's pairwise distances and App. F's projection need;
- the final layer's weight and bias (float32).

A file that lacks a class or a split asked for is computed again with the union of both (App. G.2's
reference network needs only the validation split); a torn or damaged one is computed again. The features are caught by a forward pre-hook on the final
``nn.Linear`` (its input), which works for every model of the suite.

torchvision's published weights are no run: an analysis that reads them (App. G.2's "official
ResNet-50", the alpha = 0.0 teacher cell ``checkpoint:torchvision:<enum>``) computes them with a
finished run's data config (``like``), into ``<store>/derived/torchvision/<file stem>.penultimate.pt``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import Failed

FILE = "penultimate.pt"
SPLITS = ("train", "val")
TORCHVISION = "checkpoint:torchvision:"


def path_of(store, rid: str) -> Path:
    if rid.startswith(TORCHVISION):
        from ..engine.hub import torchvision_meta

        return store.root / "derived" / "torchvision" / (Path(torchvision_meta(rid[len(TORCHVISION):])["file"]).stem
                                                         + "." + FILE)
    return store.derived_dir(rid) / FILE


def has_model(store, rid: str) -> bool:
    """Whether the features can be computed: the run's saved model (a torchvision id: always,
    its file is checked when it is read)."""
    from ..store.layout import MODEL

    return rid.startswith(TORCHVISION) or store.run_file(rid, MODEL).exists()


def _load(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        for split in saved["splits"]:  # every part there: a file cut short fails here or in torch.load
            saved[split]["centroids"], saved[split]["features"], saved[split]["labels"]
        saved["weight"], saved["bias"], saved["classes"], saved["per_class"]
        return saved
    except Exception:  # a torn or damaged file: derived, so computed again
        return None


def penultimate(store, rid: str, classes=(), per_class: dict | None = None, like: str | None = None,
                splits=SPLITS) -> dict:
    """{split: {"centroids" (C, d) float32, "counts" (C,), "features" (M, d) float32, "labels" (M,)},
    "weight" (C, d), "bias" (C,)} of a finished run (or torchvision weights, with ``like``: a finished
    run whose data config to use), the features of the first ``per_class[split]`` samples of each
    class in ``classes``, on ``splits`` (App. G.2's reference needs only the validation split: one
    pass over ImageNet's 50,000 images, not its 1.28 M training images too); computed once. A file
    lacking a class or a split is computed again with the union of both."""
    per_class = dict(per_class or {"train": 150, "val": 50})
    path = path_of(store, rid)
    saved = _load(path)
    want, splits = {int(c) for c in classes}, set(splits)
    if saved is not None and saved["per_class"] == per_class:
        if want <= set(saved["classes"]) and splits <= set(saved["splits"]):
            return _as_float(saved)
        want |= set(saved["classes"])
        splits |= set(saved["splits"])
    saved = _compute(store, rid, sorted(want), per_class, like, [s for s in SPLITS if s in splits])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(saved, tmp)
    os.replace(tmp, path)
    return _as_float(saved)


def _as_float(saved: dict) -> dict:
    out = {k: saved[k] for k in ("weight", "bias", "classes", "per_class", "splits")}
    for split in saved["splits"]:
        s = saved[split]
        out[split] = {"centroids": s["centroids"].float(), "counts": s["counts"], "labels": s["labels"],
                      "features": s["features"].float()}
    return out


def features_of(data: dict, split: str, cls: int) -> torch.Tensor:
    """The kept features (n, d) of one class in one split."""
    s = data[split]
    return s["features"][s["labels"] == cls]


def _final_linear(model) -> torch.nn.Linear:
    """The classifier: the model's named ``classifier_name`` module, else its last nn.Linear."""
    name = getattr(model, "classifier_name", None)
    layer = getattr(model, name, None) if name else None
    if not isinstance(layer, torch.nn.Linear):
        layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        if not layers:
            raise Failed(f"{type(model).__name__} has no final linear layer to take penultimate features from")
        layer = layers[-1]
    return layer


def _model_and_config(store, rid: str, like: str | None):
    from ..engine.teachers import load_teacher
    from .train_logits import finished_model

    if rid.startswith(TORCHVISION):
        from ..engine.hub import torchvision_meta

        cfg = store.config(like) if like else None
        if cfg is None:
            raise Failed(f"{rid}: no finished run of the analysis to take the data config from")
        enum = rid[len(TORCHVISION):]
        meta = torchvision_meta(enum)
        teacher = {"torchvision": enum, "file": meta["file"], "sha256": meta["sha256"],
                   "model": enum.split("_Weights")[0].lower()}
        try:
            return load_teacher({**cfg, "teacher": teacher}, store, "cpu"), cfg
        except Exception as err:  # RunFailed: the hub file missing or corrupt
            raise Failed(f"{rid}: {err}") from None
    return finished_model(store, rid, "penultimate features")


def _compute(store, rid: str, classes: list[int], per_class: dict, like: str | None, splits: list[str]) -> dict:
    from ..engine.assembly import build_pipeline
    from ..engine.data import get_spec
    from ..engine.execution import ExecOptions

    model, cfg = _model_and_config(store, rid, like)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).eval()
    layer = _final_linear(model)
    caught = []
    hook = layer.register_forward_pre_hook(lambda _m, inputs: caught.append(inputs[0].detach()))
    pipeline = build_pipeline(cfg, ExecOptions(device=device, num_workers=0))
    num_classes = get_spec(cfg["dataset"]).num_classes
    out = {"run": rid, "classes": classes, "per_class": per_class, "splits": splits,
           "weight": layer.weight.detach().float().cpu(), "bias": layer.bias.detach().float().cpu()}
    batches = {"train": pipeline.train_eval_batches, "val": pipeline.test_batches}
    try:
        for split in splits:
            out[split] = _split(model, batches[split](), caught, num_classes, classes, per_class[split])
    finally:
        hook.remove()
    return out


def _split(model, batches, caught: list, num_classes: int, classes: list[int], n: int) -> dict:
    """One pass over a split, streamed (ImageNet's 1.28 M training features would not fit): the
    per-class sums (float64) and counts, and the first ``n`` samples of each named class in order."""
    sums, counts = None, torch.zeros(num_classes, dtype=torch.long)
    named = torch.zeros(num_classes, dtype=torch.bool)
    named[classes] = True
    kept, kept_labels = [], []
    with torch.no_grad():
        for x, y in batches:
            caught.clear()
            model(x)
            f, y = caught[0].float().cpu(), y.cpu().long()
            if sums is None:
                sums = torch.zeros(num_classes, f.shape[1], dtype=torch.float64)
            sums.index_add_(0, y, f.double())
            # the rank of each sample within its class, in the split's order: keep ranks below n
            rank = counts[y] + _rank_in_batch(y)
            counts += torch.bincount(y, minlength=num_classes)
            keep = named[y] & (rank < n)
            kept.append(f[keep].half())
            kept_labels.append(y[keep])
    centroids = sums / counts.clamp_min(1)[:, None].double()
    labels = torch.cat(kept_labels)
    order = torch.argsort(labels, stable=True)  # grouped by class, each class in the split's order
    return {"centroids": centroids.float(), "counts": counts, "labels": labels[order],
            "features": torch.cat(kept)[order]}


def _rank_in_batch(y: torch.Tensor) -> torch.Tensor:
    """For each sample, how many earlier samples of the batch have its class."""
    same = y[:, None] == y[None, :]
    return torch.tril(same, diagonal=-1).sum(dim=1)
