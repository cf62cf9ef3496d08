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

Before either cache, the committed table ``benchmark/catalog/flops.json`` answers: every count that
planning every table under every profile needs, and every zoo model at its family's size (100
classes at 32 px, 1000 at 224 px), made by ``scripts/flops-table`` under the digest of
``benchmark/engine/models/*.py`` it records; a changed model file makes the table silent (and
tests/test_flops.py fails until it is remade). So ``plan`` and ``list`` count nothing, and import
no torch, on a cold cache.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from .. import diskcache

MODELS_DIR = Path(__file__).resolve().parent.parent / "engine" / "models"
TABLE = Path(__file__).resolve().parent / "flops.json"


@lru_cache(maxsize=1)
def models_digest() -> str:
    """A digest of the model code (every ``benchmark/engine/models/*.py``)."""
    digest = hashlib.sha256()
    for path in sorted(MODELS_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def torch_version() -> str:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "none"


@lru_cache(maxsize=1)
def stamp() -> str:
    """What every cached count depends on besides its key: torch's version and the model code."""
    return f"torch {torch_version()}, models {models_digest()}"


@lru_cache(maxsize=1)
def table() -> dict:
    """The committed counts ({"flops": {key: n}, "layers": {key: n}}), or empty ones when the table
    is missing, unreadable or made from other model code."""
    try:
        doc = json.loads(TABLE.read_text())
    except (OSError, ValueError):
        doc = None
    if not isinstance(doc, dict) or doc.get("models") != models_digest():
        return {"flops": {}, "layers": {}}
    return {k: doc.get(k) if isinstance(doc.get(k), dict) else {} for k in ("flops", "layers")}


@lru_cache(maxsize=None)
def forward_flops(model: str, num_classes: int, size: int) -> float:
    """FLOPs of one forward pass on one image (the module docstring's definition)."""
    key = f"{model}|{num_classes}|{size}"
    cached = table()["flops"].get(key)
    if cached is None:
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
    cached = table()["layers"].get(key)
    if cached is None:
        cached = diskcache.read("layers", stamp()).get(key)
    if isinstance(cached, int) and not isinstance(cached, bool):
        return cached
    count = count_layers(model, num_classes)
    diskcache.update("layers", stamp(), {key: count})
    return count


def count_layers(model: str, num_classes: int) -> int:
    """The count itself, on the meta device."""
    import torch
    from torch import nn

    from ..engine.models import build_model

    with torch.device("meta"):
        net = build_model(model, num_classes)
    return sum(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) for m in net.modules())


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


def write_table(flops_keys: set[tuple[str, int, int]], layer_keys: set[tuple[str, int]]) -> dict:
    """Count every key (with torch) and write the committed table (scripts/flops-table)."""
    doc = {"what": "FLOPs of one forward pass (torch's FlopCounterMode, meta device) and conv/linear layer "
                   "counts per model|classes[|side]: benchmark/catalog/flops.py; made by scripts/flops-table",
           "models": models_digest(), "torch": torch_version(),
           "flops": {f"{m}|{c}|{s}": count_forward_flops(m, c, s) for m, c, s in sorted(flops_keys)},
           "layers": {f"{m}|{c}": count_layers(m, c) for m, c in sorted(layer_keys)}}
    TABLE.write_text(json.dumps(doc, indent=0, sort_keys=True) + "\n")
    table.cache_clear()
    return doc
