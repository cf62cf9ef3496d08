"""Numerics policies: one name (``--numerics``) for the switches that decide how a run's floating
point behaves, so that one place decides them and every result can say what ran.

- ``reproducible`` (the default, at every profile): the same bits from the same config on the same
  device model and software. Deterministic kernels: ``torch.use_deterministic_algorithms(True)``
  (an op with no deterministic form raises instead of warning; benchmark/engine/detops.py gives the ones
  this suite uses a deterministic form), ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (cuBLAS's
  deterministic workspace, set before CUDA starts; a value the user set is kept, and recorded),
  cuDNN deterministic and not autotuned. fp32 precision as PyTorch's defaults (full fp32 matmuls;
  cuDNN may use TF32 for convolutions), recorded.
- ``strict``: ``reproducible`` with TF32 off everywhere (matmuls and cuDNN convolutions): the
  closest a GPU comes to the CPU's numbers.
- ``fast``: TF32, bf16 autocast (the logits and the losses stay fp32: accel.py's fp32 head),
  channels-last, cuDNN autotuning, horizontal fusion (horizontal.py: a group's students of one
  architecture as one batched model); not bit-reproducible. ``torch.compile`` is not part of it: it
  costs a compilation per network and batch shape (the eval batches, a last partial batch) in every
  run, does not wrap the ``extract()`` path of the feature methods, and no GPU has measured that it
  pays here yet; ``--compile inductor`` adds it.

``FLAGS[policy]`` maps each policy onto accel.py's flags (``tf32``: ``default`` leaves PyTorch's
settings as the process found them, ``off``/``on`` force them); accel.Accel fills the flags not given
from it. This module imports no torch when loaded (the command line reads ``POLICIES``).
"""

from __future__ import annotations

import os
import sys

POLICIES = ("reproducible", "strict", "fast")
DEFAULT = "reproducible"
TF32 = ("default", "off", "on")

FLAGS: dict[str, dict] = {
    "reproducible": {"deterministic": True, "cudnn_benchmark": False, "tf32": "default", "amp": "off",
                     "channels_last": False, "compile": "off", "sgd": "foreach", "horizontal": "off"},
    "strict": {"deterministic": True, "cudnn_benchmark": False, "tf32": "off", "amp": "off",
               "channels_last": False, "compile": "off", "sgd": "foreach", "horizontal": "off"},
    "fast": {"deterministic": False, "cudnn_benchmark": True, "tf32": "on", "amp": "bf16",
             "channels_last": True, "compile": "off", "sgd": "foreach", "horizontal": "on"},
}

CUBLAS_VAR = "CUBLAS_WORKSPACE_CONFIG"
CUBLAS_DETERMINISTIC = ":4096:8"
# Marks a CUBLAS_WORKSPACE_CONFIG this suite set (inherited by the workers it starts), so that a
# result can tell it from one the user set.
CUBLAS_SET_BY_US = "KD_REPRO_SET_CUBLAS_WORKSPACE_CONFIG"


def prepare_environment(deterministic: bool) -> None:
    """Before CUDA starts (the command's entry; accel.configure again for callers of the API): the
    deterministic cuBLAS workspace, unless the user set a value of their own."""
    if not deterministic or CUBLAS_VAR in os.environ:
        return
    os.environ[CUBLAS_VAR] = CUBLAS_DETERMINISTIC
    torch = sys.modules.get("torch")  # never imported here just to ask
    started = torch is not None and torch.cuda.is_initialized()
    # cuBLAS reads it when its first handle is made: too late once CUDA has run a matmul
    os.environ[CUBLAS_SET_BY_US] = "after CUDA started" if started else "before CUDA started"


def cublas_workspace() -> dict:
    """The CUBLAS_WORKSPACE_CONFIG this process has and who set it."""
    value = os.environ.get(CUBLAS_VAR)
    ours = os.environ.get(CUBLAS_SET_BY_US)
    if value is None:
        return {"value": None, "set_by": None}
    return {"value": value, "set_by": f"kd-repro ({ours})" if ours and value == CUBLAS_DETERMINISTIC else "environment"}


# ---------------------------------------------------------------- fp32 precision


def fp32_precision(backends=None) -> dict:
    """The fp32 precision of CUDA matmuls and cuDNN convolutions as torch reports it: torch's
    ``fp32_precision`` API where it exists (``ieee``, ``tf32``; ``none``: PyTorch's default, full
    fp32 for matmuls), else the older ``allow_tf32`` switches (``tf32`` when allowed, else ``ieee``).
    ``backends``: ``torch.backends`` (another object only to test the older API's reading)."""
    if backends is None:
        import torch.backends.cuda
        import torch.backends.cudnn

        backends = torch.backends
    cuda, cudnn = backends.cuda, backends.cudnn
    try:
        return {"api": "fp32_precision", "cuda_matmul": cuda.matmul.fp32_precision,
                "cudnn_conv": cudnn.conv.fp32_precision}
    except AttributeError:
        return {"api": "allow_tf32", "cuda_matmul": "tf32" if cuda.matmul.allow_tf32 else "ieee",
                "cudnn_conv": "tf32" if cudnn.allow_tf32 else "ieee"}


_DEFAULTS: dict = {}  # PyTorch's own settings as this process found them, before any policy set one


def set_fp32_precision(tf32: str) -> None:
    """``default``: PyTorch's settings as the process found them; ``off``: full fp32 matmuls and
    convolutions; ``on``: TF32 for both. Process-wide, as torch keeps them."""
    import torch.backends.cuda
    import torch.backends.cudnn

    cuda, cudnn = torch.backends.cuda, torch.backends.cudnn
    new_api = fp32_precision()["api"] == "fp32_precision"
    if not _DEFAULTS:
        _DEFAULTS.update({"matmul": cuda.matmul.fp32_precision, "conv": cudnn.conv.fp32_precision} if new_api
                         else {"matmul": cuda.matmul.allow_tf32, "conv": cudnn.allow_tf32})
    if tf32 == "default":
        matmul, conv = _DEFAULTS["matmul"], _DEFAULTS["conv"]
    elif new_api:
        matmul = conv = "tf32" if tf32 == "on" else "ieee"
    else:
        matmul = conv = tf32 == "on"
    # one API only: torch refuses to report a precision set through both
    if new_api:
        cuda.matmul.fp32_precision, cudnn.conv.fp32_precision = matmul, conv
    else:
        cuda.matmul.allow_tf32, cudnn.allow_tf32 = matmul, conv
