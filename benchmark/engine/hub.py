"""Torchvision's published ImageNet weights as teachers, found where torchvision keeps them.

All three papers with ImageNet tables distil from torchvision's pretrained ResNets (LS-KD's
teacher cell 76.130 / 92.862 is torchvision's ResNet-50 IMAGENET1K_V1 model card). A zoo entry
names them as torchvision does:

    torchvision: {weights: ResNet50_Weights.IMAGENET1K_V1, file: resnet50-0676ba61.pth, sha256: 0676ba61}

``file`` is the last part of the weights' URL and ``sha256`` the hex digits in that name: torchvision
records no full digest, only this prefix, and torch.hub's ``check_hash`` accepts a file when

    sha256(file)[:len(prefix)] == prefix

which is the check made here too. The file lives in torch.hub's cache,
``$TORCH_HOME/hub/checkpoints/<file>`` (default ``~/.cache/torch/hub/checkpoints``), where
``torchvision.models.resnet50(weights=...)`` downloads it.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from pathlib import Path

from ..errors import BadInput

# torch.hub.HASH_REGEX: the digest prefix in a hub file name, "-<hex>." ("resnet50-0676ba61.pth")
HASH_IN_NAME = re.compile(r"-([a-f0-9]*)\.")
URL_ROOT = "https://download.pytorch.org/models/"
DOWNLOAD_TIMEOUT_S = 60.0


def torchvision_meta(weights: str) -> dict:
    """{"file", "sha256" (the prefix), "url", "top1", "top5"} of a torchvision weights enum name,
    e.g. "ResNet50_Weights.IMAGENET1K_V1", from the installed torchvision's own metadata."""
    from torchvision.models import get_weight

    try:
        w = get_weight(weights)
    except (ValueError, KeyError, AttributeError) as err:
        raise ValueError(f"not a torchvision weights enum: {weights!r} ({err})") from None
    file = w.url.rsplit("/", 1)[-1]
    match = HASH_IN_NAME.search(file)
    metrics = w.meta.get("_metrics", {}).get("ImageNet-1K", {})
    return {"file": file, "sha256": match.group(1) if match else None, "url": w.url,
            "top1": metrics.get("acc@1"), "top5": metrics.get("acc@5")}


def hub_dir() -> Path:
    """torch.hub's checkpoint cache: $TORCH_HOME/hub/checkpoints (torch.hub.get_dir() + checkpoints)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256_prefix_ok(path: Path, prefix: str) -> bool:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest().startswith(prefix)


def check_entry(spec: dict, where, field_name) -> dict:
    """Structure of a zoo entry's ``torchvision:`` (the values are compared with torchvision's
    metadata by the tests, not at every load: an older torchvision may lack newer enums)."""
    if not isinstance(spec, dict) or set(spec) != {"weights", "file", "sha256"}:
        raise BadInput(where, field_name, "must be {weights: <torchvision enum>, file: <hub file name>, "
                                          "sha256: <the hex digits in the file name>}")
    file, prefix = spec["file"], spec["sha256"]
    if not isinstance(file, str) or "/" in file or os.sep in file or file.startswith("."):
        raise BadInput(where, f"{field_name}.file", "must be a bare file name (it lives in torch.hub's cache)")
    match = HASH_IN_NAME.search(file)
    if not isinstance(prefix, str) or not re.fullmatch(r"[0-9a-f]{8,64}", prefix) or not match \
            or match.group(1) != prefix:
        raise BadInput(where, f"{field_name}.sha256", "must be the hex digest prefix in the file name, as "
                                                      "torchvision records it")
    if not isinstance(spec["weights"], str) or "_Weights." not in spec["weights"]:
        raise BadInput(where, f"{field_name}.weights", "must name a torchvision weights enum, e.g. "
                                                       "ResNet50_Weights.IMAGENET1K_V1")
    return spec


def url_of(teacher: dict) -> str:
    try:
        return torchvision_meta(teacher["torchvision"])["url"]
    except ValueError:  # an enum this torchvision lacks: torchvision's URL layout
        return URL_ROOT + teacher["file"]


def missing_message(teacher: dict) -> str:
    return f"place {teacher['file']} (torchvision's {teacher['torchvision']}, {url_of(teacher)}) in {hub_dir()}/"


def local_file(teacher: dict) -> Path:
    """The verified hub file of a config's torchvision teacher; ValueError (one line) if it is
    missing or its digest does not start with the recorded prefix."""
    path = hub_dir() / teacher["file"]
    if not path.is_file():
        raise ValueError(f"torchvision weights not found: {missing_message(teacher)}")
    if not sha256_prefix_ok(path, teacher["sha256"]):
        raise ValueError(f"{path}: its sha256 does not start with {teacher['sha256']} (a corrupt or other "
                         f"file); delete it and place torchvision's {teacher['file']} there")
    return path


def ensure_files(teachers: list[dict], download: bool = True) -> list[Path]:
    """Every torchvision teacher's file in the hub cache, fetched as torchvision fetches it
    (torch.hub.download_url_to_file with the hash prefix) when missing and ``download``; else
    BadInput in one line saying which file to place where. Run before anything is written."""
    import torch

    paths = []
    for teacher in {t["file"]: t for t in teachers}.values():
        path = hub_dir() / teacher["file"]
        if not path.is_file() and download:
            old = socket.getdefaulttimeout()
            socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.hub.download_url_to_file(url_of(teacher), str(path), hash_prefix=teacher["sha256"],
                                               progress=False)
            except Exception as err:  # no network, a proxy, a bad download: say what to do by hand
                reason = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise BadInput("teacher", teacher["torchvision"],
                               f"download failed ({reason}); {missing_message(teacher)}") from None
            finally:
                socket.setdefaulttimeout(old)
        try:
            paths.append(local_file(teacher))
        except ValueError as err:
            raise BadInput("teacher", teacher["torchvision"], str(err)) from None
    return paths


def offline() -> bool:
    """KD_REPRO_OFFLINE=1: never download (a missing file is then the one-line instruction)."""
    return os.environ.get("KD_REPRO_OFFLINE", "") not in ("", "0")
