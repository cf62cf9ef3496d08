"""FLOPs of one forward pass, counted once per (model, classes, input side) and kept on disk.

    forward_flops(model, num_classes, size) = FLOPs torch's FlopCounterMode counts for one
    image of size x size through ``build_model(model, num_classes)`` on the meta device.

Counting builds the model and traces it (seconds per ImageNet model, and it needs torch), yet
the answer depends only on the model's code, the three arguments and torch's counting rules. So
the counts are kept in ``$KD_REPRO_CACHE/flops.json`` (default ``~/.cache/kd-repro``) under a
stamp made of torch's installed version and a digest of ``benchmark/models/*.py``: a changed
model file or another torch discards the whole file, so a cached count is always the count the
current code would give. A cache that cannot be read or written is only slower, never wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent / "models"


def cache_file() -> Path:
    root = os.environ.get("KD_REPRO_CACHE") or Path.home() / ".cache" / "kd-repro"
    return Path(root) / "flops.json"


@lru_cache(maxsize=1)
def stamp() -> str:
    """What every cached count depends on besides its key: torch's version and the model code."""
    digest = hashlib.sha256()
    for path in sorted(MODELS_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "none"
    return f"torch {torch_version}, models {digest.hexdigest()[:16]}"


def _read() -> dict:
    try:
        doc = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return doc.get("counts", {}) if isinstance(doc, dict) and doc.get("stamp") == stamp() else {}


def _write(counts: dict) -> None:
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = {**_read(), **counts}  # another process may have added counts meanwhile
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".flops.")
        with os.fdopen(fd, "w") as f:
            json.dump({"stamp": stamp(), "counts": merged}, f, indent=0, sort_keys=True)
        os.replace(tmp, path)  # atomic: a reader sees the old file or the new one
    except OSError:
        pass


@lru_cache(maxsize=None)
def forward_flops(model: str, num_classes: int, size: int) -> float:
    """FLOPs of one forward pass on one image (the module docstring's definition)."""
    key = f"{model}|{num_classes}|{size}"
    cached = _read().get(key)
    if isinstance(cached, (int, float)):
        return float(cached)
    flops = count_forward_flops(model, num_classes, size)
    _write({key: flops})
    return flops


def count_forward_flops(model: str, num_classes: int, size: int) -> float:
    """The count itself, by torch on the meta device (no memory, no weights initialised)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .models import build_model

    with torch.device("meta"):
        net = build_model(model, num_classes).eval()
        x = torch.empty(1, 3, size, size)
        with FlopCounterMode(display=False) as counter:
            net(x)
    return float(counter.get_total_flops())
