"""Where a result came from: the code's git revision (``+dirty`` with uncommitted changes), torch,
torchvision, CUDA and cuDNN, the device, the host, the thread count."""

from __future__ import annotations

import importlib.util
import platform
import re
import socket
import subprocess
from functools import lru_cache
from pathlib import Path

import torch


@lru_cache(maxsize=1)
def code_revision() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (rev + ("+dirty" if dirty else "")) if rev else "unknown"


@lru_cache(maxsize=1)
def torchvision_version() -> str:
    """torchvision's ``__version__`` (with its local part, e.g. ``+cu130``, which the installed
    metadata's version lacks), read from its version.py, so that a run on tensors does not import
    torchvision for one string (0.1-0.2 s once torch.optim has imported torch._dynamo, measured)."""
    spec = importlib.util.find_spec("torchvision")
    version_file = Path(spec.origin).with_name("version.py") if spec and spec.origin else None
    if version_file is not None and version_file.is_file():
        if m := re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", version_file.read_text(), re.M):
            return m[1]
    import torchvision  # a layout without version.py: ask the package

    return torchvision.__version__


def provenance(device) -> dict:
    dev = torch.device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    return {"code_revision": code_revision(), "torch": torch.__version__, "torchvision": torchvision_version(),
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if dev.type == "cuda" else None,
            "device": str(dev), "device_name": name, "python": platform.python_version(),
            "host": socket.gethostname(), "threads": torch.get_num_threads()}
