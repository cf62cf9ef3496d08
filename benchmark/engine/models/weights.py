"""Loading a local state-dict file into a built model, for fine-tuning from pretrained weights."""

import argparse
import hashlib
import pickle
import re
from pathlib import Path

import torch
from torch import nn

# Beyond tensors and plain containers, the one class an outside checkpoint may hold: RepDistiller's
# ``*_last.pth`` files pickle the run's options (an argparse Namespace) under "opt"
# (train_teacher.py l. 165-172, train_student.py l. 337-343). Nothing else is allowed.
SAFE_GLOBALS = [argparse.Namespace]


class RefusedPickle(pickle.UnpicklingError):
    """A checkpoint the safe loader refuses: it pickles objects beyond tensors, plain containers
    and SAFE_GLOBALS. The message is ours, one line: torch's own advises turning the safe load
    off, the very step that loading with ``weights_only=True`` exists to prevent."""


def load_file(path: str | Path) -> object:
    """``torch.load`` of a checkpoint made elsewhere: weights_only, plus SAFE_GLOBALS
    (RefusedPickle when the file pickles anything else)."""
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" not in str(err).lower():  # a damaged file, not a refusal: its own message
            raise
        raise RefusedPickle(_refusal(str(err))) from None


def _refusal(torch_message: str) -> str:
    """Why the safe loader refused a file and what to do, from torch's message (which names the
    offending global, or the pickle instruction it does not support)."""
    found = re.search(r"GLOBAL (\S+) was not an allowed global", torch_message)
    if found:
        why = f" ({found.group(1)})"
    else:
        detail = torch_message.split("WeightsUnpickler error:", 1)[1:]
        first = [line.strip() for line in (detail[0] if detail else "").splitlines() if line.strip()]
        why = f" ({first[0][:120]})" if first and "weights_only" not in first[0] else ""
    return (f"it holds pickled objects the safe loader does not allow{why}; convert it to a plain state_dict "
            f"saved with torch.save(model.state_dict(), path), or name its layout (the program that wrote it) "
            f"in an issue so that the suite can read it")


def unwrap_state_dict(obj: object, *, strict: bool, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint in the layouts people have on disk: plain, or under
    "state_dict" / "model" (as RepDistiller saves them), names without DataParallel's "module.".

    ``strict``: every entry must be a tensor (ValueError naming ``source`` otherwise), as for
    weights a model is fine-tuned from. Not strict: non-tensor entries are dropped, for teacher
    files that keep bookkeeping next to the weights; a teacher is then loaded into its
    architecture strictly, which still catches a missing or extra weight."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or (strict and not all(isinstance(v, torch.Tensor) for v in obj.values())):
        raise ValueError(f"{source}: not a state dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def sha256_of(path: str | Path) -> str:
    """The file's sha256, as configs pin teacher checkpoints and init weights."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _shapes(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items() if k.startswith(prefix)}


def _listing(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load ``path`` into ``model`` in place.

    The classifier (``model.classifier_name``) is the one part allowed to differ: when the
    file's classifier does not match the model's (another class count, or another head), all
    classifier entries are skipped and the model keeps its fresh init, as when fine-tuning
    ImageNet weights on CUB or Dogs. Anything else missing, unexpected or mis-shaped raises
    ValueError naming the keys.
    """
    path = str(path)
    sd = unwrap_state_dict(load_file(path), strict=True, source=path)
    own = model.state_dict()

    head = model.classifier_name + "."
    if _shapes(sd, head) != _shapes(own, head):
        sd = {k: v for k, v in sd.items() if not k.startswith(head)}
        own = {k: v for k, v in own.items() if not k.startswith(head)}

    # num_batches_tracked is BatchNorm bookkeeping absent from older checkpoints, not a weight.
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    misshaped = [f"{k} {tuple(sd[k].shape)} vs {tuple(v.shape)}"
                 for k, v in own.items() if k in sd and sd[k].shape != v.shape]
    problems = [f"{what}: {_listing(keys)}" for what, keys in
                (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)) if keys]
    if problems:
        raise ValueError(f"{path}: weights do not fit the model; " + "; ".join(problems))
    model.load_state_dict(sd, strict=False)
