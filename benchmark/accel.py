"""Optional accelerations of the training step, and the determinism flags.

None of them is part of a run's id (they say how a run was executed, not what it computes) and
all of them are recorded in its result, so a report can say which ran. They differ in what they
promise:

- exact (the same bits: weights, test logits and metrics equal; tested on the CPU only):
  ``sgd="foreach"`` (the optimizer's multi-tensor kernels instead of a Python loop over
  parameters), ``compile`` with a backend that does not rewrite the maths (``aot_eager``: the
  traced graph runs the same aten kernels);
- equal up to floating-point rounding (tested to a tolerance): ``sgd="fused"`` (one fused kernel
  per step, which rounds differently), ``channels_last`` (NHWC convolutions),
  ``compile="inductor"`` (fused kernels), ``cudnn_benchmark`` (autotuned convolution
  algorithms, CUDA only);
- different numerics, a reading to record: ``amp="bf16"`` (bf16 autocast of the forward passes;
  the losses still run in float32).

Defaults are the exact ones; ``runner.py bench`` measures the others side by side on the
machine at hand (``--amp bf16 --channels-last --compile inductor``) so that they can be turned on
where they pay. Determinism: ``deterministic=None`` means on for the CPU (bit-exact resume, the
tests' fused == apart) and off on CUDA, where deterministic kernels cost speed and cuDNN makes no
bit-exactness promise across runs anyway.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where it is used: the command line loads this module
    import torch

AMP = ("off", "bf16")
SGD_IMPL = ("loop", "foreach", "fused")
COMPILE = ("off", "aot_eager", "inductor")


@dataclass(frozen=True)
class Accel:
    amp: str = "off"
    channels_last: bool = False
    compile: str = "off"
    sgd: str = "foreach"
    cudnn_benchmark: bool = False
    deterministic: bool | None = None

    def __post_init__(self):
        for name, value, allowed in (("amp", self.amp, AMP), ("sgd", self.sgd, SGD_IMPL),
                                     ("compile", self.compile, COMPILE)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")

    def resolved(self, device: torch.device) -> Accel:
        """The flags as they apply on ``device`` (auto determinism decided, CUDA-only flags off)."""
        det = (device.type == "cpu") if self.deterministic is None else self.deterministic
        return replace(self, cudnn_benchmark=self.cudnn_benchmark and device.type == "cuda" and not det,
                       deterministic=det)

    def record(self) -> dict:
        return asdict(self)


def configure(device: torch.device, accel: Accel) -> None:
    """Process-wide switches; called once per group of runs."""
    import torch

    torch.use_deterministic_algorithms(bool(accel.deterministic), warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = accel.cudnn_benchmark
        torch.backends.cudnn.deterministic = bool(accel.deterministic)


def autocast(device: torch.device, accel: Accel):
    import torch

    if accel.amp == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_model(model: torch.nn.Module, accel: Accel):
    """Lay the model out for the flags; return the callable to run forward passes with (the model
    itself, or its compiled wrapper: the weights and their names stay the model's)."""
    import torch

    if accel.channels_last:
        model.to(memory_format=torch.channels_last)
    if accel.compile != "off":
        return torch.compile(model, backend=accel.compile)
    return model


def prepare_input(x: torch.Tensor, accel: Accel) -> torch.Tensor:
    import torch

    if accel.channels_last and x.ndim == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def sgd_flags(accel: Accel) -> dict:
    """Keyword arguments of torch.optim.SGD for the chosen implementation."""
    return {"foreach": accel.sgd == "foreach", "fused": True if accel.sgd == "fused" else None}


# ---------------------------------------------------------------- command line


def add_arguments(parser) -> None:
    g = parser.add_argument_group("accelerations (recorded in every result; see benchmark/accel.py)")
    g.add_argument("--amp", choices=AMP, default="off", help="bf16 autocast of the forward passes (default off)")
    g.add_argument("--channels-last", action="store_true", help="NHWC memory format for models and batches")
    g.add_argument("--compile", choices=COMPILE, default="off", help="torch.compile backend (default off)")
    g.add_argument("--sgd", choices=SGD_IMPL, default="foreach", help="SGD implementation (default foreach)")
    g.add_argument("--cudnn-benchmark", action="store_true", help="autotune cuDNN convolutions (CUDA, non-deterministic)")
    g.add_argument("--deterministic", choices=("auto", "on", "off"), default="auto",
                   help="deterministic algorithms (auto: on for the CPU, off on CUDA)")


def from_args(args) -> Accel:
    det = {"auto": None, "on": True, "off": False}[args.deterministic]
    return Accel(amp=args.amp, channels_last=args.channels_last, compile=args.compile, sgd=args.sgd,
                 cudnn_benchmark=args.cudnn_benchmark, deterministic=det)


def to_cli(accel: Accel) -> list[str]:
    """The flags that give ``accel`` back through :func:`from_args` (for worker processes)."""
    det = {None: "auto", True: "on", False: "off"}[accel.deterministic]
    return (["--amp", accel.amp, "--compile", accel.compile, "--sgd", accel.sgd, "--deterministic", det]
            + (["--channels-last"] if accel.channels_last else [])
            + (["--cudnn-benchmark"] if accel.cudnn_benchmark else []))
