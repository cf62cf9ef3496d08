"""FLOPs of one forward pass, counted once per (model, classes, input side) and kept on disk.

    forward_flops(model, num_classes, size) = FLOPs torch's FlopCounterMode counts for one
    image of size x size through ``build_model(model, num_classes)`` on the meta device.

Counting builds the model and traces it (seconds per ImageNet model, and it needs torch), yet
the answer depends only on the model's code, the three arguments and torch's counting rules. So
the counts are kept in ``$KD_REPRO_CACHE/flops.json`` (default ``~/.cache/kd-repro``) under a
stamp made of torch's installed version and a digest of ``benchmark/engine/models/*.py``: a changed
model file or another torch discards the whole file, so a cached count is always the count the
current code would give. A cache that cannot be read or written is only slower, never wrong.

    layer_count(model, num_classes) = the model's convolution and linear layers: what the cost
    model's per-step overhead grows with (each brings its kernels: normalisation, activation),
    kept in ``$KD_REPRO_CACHE/layers.json`` under the same stamp.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from .. import diskcache

MODELS_DIR = Path(__file__).resolve().parent.parent / "engine" / "models"


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


@lru_cache(maxsize=None)
def forward_flops(model: str, num_classes: int, size: int) -> float:
    """FLOPs of one forward pass on one image (the module docstring's definition)."""
    key = f"{model}|{num_classes}|{size}"
    cached = diskcache.read("flops", stamp()).get(key)
    if isinstance(cached, (int, float)):
        return float(cached)
    flops = count_forward_flops(model, num_classes, size)
    diskcache.update("flops", stamp(), {key: flops})
    return flops


@lru_cache(maxsize=None)
def layer_count(model: str, num_classes: int) -> int:
    """Convolution and linear layers of ``build_model(model, num_classes)`` (the module docstring)."""
    key = f"{model}|{num_classes}"
    cached = diskcache.read("layers", stamp()).get(key)
    if isinstance(cached, int) and not isinstance(cached, bool):
        return cached
    import torch
    from torch import nn

    from ..engine.models import build_model

    with torch.device("meta"):
        net = build_model(model, num_classes)
    count = sum(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) for m in net.modules())
    diskcache.update("layers", stamp(), {key: count})
    return count


def count_forward_flops(model: str, num_classes: int, size: int) -> float:
    """The count itself, by torch on the meta device (no memory, no weights initialised)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ..engine.models import build_model, model_info

    shape = model_info(model).get("input_shape") or (3, size, size)  # speech models: MFCCs, whatever the size
    with torch.device("meta"):
        net = build_model(model, num_classes).eval()
        x = torch.empty(1, *shape)
        with FlopCounterMode(display=False) as counter:
            net(x)
    return float(counter.get_total_flops())
