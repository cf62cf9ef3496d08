"""Optional accelerations of the training step, the determinism and precision switches, and
what ran as read back from torch.

The numerics policy (``--numerics``, benchmark/engine/numerics.py) decides every flag here; a flag given
beside it overrides the policy's value and is recorded as an override. None of them is part of a
run's id (they say how a run was executed, not what it computes) and all of them are recorded in
its result, so a report can say which ran. They differ in what they promise:

- exact (the same bits: weights, test logits and metrics equal; tested on the CPU only):
  ``sgd="foreach"`` (the optimizer's multi-tensor kernels instead of a Python loop over
  parameters), ``compile`` with a backend that does not rewrite the maths (``aot_eager``: the
  traced graph runs the same aten kernels);
- equal up to floating-point rounding (tested to a tolerance): ``sgd="fused"`` (one fused kernel
  per step, which rounds differently), ``channels_last`` (NHWC convolutions),
  ``compile="inductor"`` (fused kernels), ``cudnn_benchmark`` (autotuned convolution
  algorithms, CUDA only, never under deterministic kernels), ``tf32`` (CUDA only),
  ``horizontal="on"`` (a fused group's students of one architecture as one batched model, whose
  grouped kernels sum in another order: horizontal.py);
- different numerics, a reading to record: ``amp="bf16"`` (bf16 autocast of the networks; their
  classifier heads run in fp32 outside it, so the logits, both the student's and the teacher's,
  reach the losses unrounded, and the losses compute in fp32).

The defaults (``reproducible``) are the exact ones plus deterministic kernels on every device;
``runner.py bench`` measures the others side by side on the machine at hand (``--numerics fast``,
or single flags) so that they can be turned on where they pay.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from . import numerics

if TYPE_CHECKING:  # torch is imported where it is used: the command line loads this module
    import torch

AMP = ("off", "bf16")
SGD_IMPL = ("loop", "foreach", "fused")
COMPILE = ("off", "aot_eager", "inductor")
HORIZONTAL = ("on", "off")
FLAGS = ("amp", "channels_last", "compile", "sgd", "cudnn_benchmark", "deterministic", "tf32", "horizontal")


@dataclass(frozen=True)
class Accel:
    """The execution flags of a group of runs. A flag left None takes the policy's value
    (``numerics.FLAGS``); ``resolved(device)`` turns off what the device cannot apply and says so
    in ``not_applied`` (flag, why)."""
    amp: str | None = None
    channels_last: bool | None = None
    compile: str | None = None
    sgd: str | None = None
    cudnn_benchmark: bool | None = None
    deterministic: bool | None = None
    numerics: str = numerics.DEFAULT
    tf32: str | None = None  # default (PyTorch's settings), off, on
    horizontal: str | None = None  # on: a group's students of one architecture as one batched model
    not_applied: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        if self.numerics not in numerics.POLICIES:
            raise ValueError(f"numerics must be one of {', '.join(numerics.POLICIES)}, got {self.numerics!r}")
        policy = numerics.FLAGS[self.numerics]
        for name in FLAGS:
            if getattr(self, name) is None:
                object.__setattr__(self, name, policy[name])
        for name, value, allowed in (("amp", self.amp, AMP), ("sgd", self.sgd, SGD_IMPL),
                                     ("compile", self.compile, COMPILE), ("tf32", self.tf32, numerics.TF32),
                                     ("horizontal", self.horizontal, HORIZONTAL)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")

    def resolved(self, device: torch.device) -> Accel:
        """The flags as they apply on ``device``: what it cannot apply is turned off (TF32 left at
        PyTorch's defaults) and listed in ``not_applied``."""
        skipped = dict(self.not_applied)
        bench, tf32 = self.cudnn_benchmark, self.tf32
        if bench and device.type != "cuda":
            bench, skipped["cudnn_benchmark"] = False, f"no cuDNN on {device.type}"
        elif bench and self.deterministic:
            bench, skipped["cudnn_benchmark"] = False, "cuDNN autotuning picks kernels by timing: not under " \
                                                       "deterministic kernels"
        if tf32 == "on" and device.type != "cuda":
            tf32, skipped["tf32"] = "default", f"no TF32 on {device.type}: its fp32 kernels are full precision"
        return replace(self, cudnn_benchmark=bench, tf32=tf32, not_applied=tuple(sorted(skipped.items())))

    def overrides(self) -> dict:
        """The flags set apart from the policy (not counting what the device could not apply)."""
        policy, skipped = numerics.FLAGS[self.numerics], dict(self.not_applied)
        return {k: getattr(self, k) for k in FLAGS if k not in skipped and getattr(self, k) != policy[k]}

    def label(self) -> str:
        """The policy and its overrides in one string: ``fast`` or ``reproducible, amp=bf16``; a run
        is resumed only under the same label."""
        return ", ".join([self.numerics, *(f"{k}={v}" for k, v in sorted(self.overrides().items()))])

    def record(self) -> dict:
        return {"numerics": self.numerics, **{k: getattr(self, k) for k in FLAGS},
                "overrides": self.overrides(), "not_applied": dict(self.not_applied)}


def configure(accel: Accel) -> None:
    """Process-wide switches (so no device: they hold for every device); called once per group of
    runs, with ``accel`` resolved for the group's device."""
    import torch

    numerics.prepare_environment(bool(accel.deterministic))  # the command's entry set it already
    # not warn_only: an op without a deterministic form must fail the run, not pass it silently
    torch.use_deterministic_algorithms(bool(accel.deterministic))
    torch.backends.cudnn.deterministic = bool(accel.deterministic)
    torch.backends.cudnn.benchmark = bool(accel.cudnn_benchmark)
    numerics.set_fp32_precision(accel.tf32)


def read_back(device: torch.device, accel: Accel, model: torch.nn.Module | None = None) -> dict:
    """What ran, as torch reports it now: determinism, cuDNN, fp32 precision, the autocast dtype
    that ``autocast`` sets, the model's memory format, cuBLAS's workspace."""
    import torch

    with autocast(device, accel):
        dtype = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else None
    weight = next((p for p in model.parameters() if p.dim() == 4), None) if model is not None else None
    layout = None if weight is None else (
        "channels_last" if weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
        else "contiguous")
    return {"numerics": accel.numerics,
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "fp32_precision": numerics.fp32_precision(),
            "autocast_dtype": None if dtype is None else str(dtype).removeprefix("torch."),
            "memory_format": layout,
            "cublas_workspace_config": numerics.cublas_workspace()}


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
    if accel.amp != "off":
        fp32_head(model)
    if accel.compile != "off":
        return torch.compile(model, backend=accel.compile)
    return model


def fp32_head(model: torch.nn.Module) -> None:
    """Run the network's classifier head (``model.classifier_name``) in fp32, outside autocast.

    Under bf16 autocast a head's matmul would return bf16 logits, which the losses' fp32 upcast
    (precision.py) cannot un-round: the teacher's soft targets and the student's logits would both
    reach the loss rounded to 8 bits of mantissa. Here the head multiplies the (bf16) features in
    fp32, so both networks' logits are fp32 numbers; the body keeps its bf16 speed. The forward and
    the weights' names are the module's own: checkpoints are unchanged, and without autocast the
    head computes exactly what it did."""
    import torch

    name = getattr(model, "classifier_name", None)
    head = model.get_submodule(name) if name else None
    if head is None or getattr(head, "fp32_head", False):
        return
    forward = head.forward

    def fp32_forward(x):
        with torch.autocast(device_type=x.device.type, enabled=False):
            return forward(x.float())
    head.forward, head.fp32_head = fp32_forward, True


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
    import argparse

    g = parser.add_argument_group("numerics and accelerations (recorded in every result; see benchmark/engine/numerics.py "
                                  "and benchmark/engine/accel.py)")
    g.add_argument("--numerics", choices=numerics.POLICIES, default=numerics.DEFAULT,
                   help="reproducible: deterministic kernels, PyTorch's fp32 precision; strict: that with TF32 off; "
                        "fast: TF32, bf16 autocast, channels-last, cuDNN autotuning (not bit-reproducible)")
    policy = " (default: the --numerics policy's)"
    g.add_argument("--amp", choices=AMP, default=None, help="bf16 autocast of the networks" + policy)
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="NHWC memory format for models and batches" + policy)
    g.add_argument("--compile", choices=COMPILE, default=None, help="torch.compile backend" + policy)
    g.add_argument("--sgd", choices=SGD_IMPL, default=None, help="SGD implementation" + policy)
    g.add_argument("--cudnn-benchmark", action=argparse.BooleanOptionalAction, default=None,
                   help="autotune cuDNN convolutions (CUDA, not under deterministic kernels)" + policy)
    g.add_argument("--deterministic", choices=("auto", "on", "off"), default=None,
                   help="deterministic algorithms (auto: the policy's)" + policy)
    g.add_argument("--tf32", choices=numerics.TF32, default=None,
                   help="fp32 precision of CUDA matmuls and cuDNN convolutions (default: PyTorch's)" + policy)
    g.add_argument("--horizontal", choices=HORIZONTAL, default=None,
                   help="train a fused group's students of one architecture as one batched model (vmap over "
                        "their stacked weights: not the same bits as apart)" + policy)


def from_args(args) -> Accel:
    det = {None: None, "auto": None, "on": True, "off": False}[args.deterministic]
    return Accel(amp=args.amp, channels_last=args.channels_last, compile=args.compile, sgd=args.sgd,
                 cudnn_benchmark=args.cudnn_benchmark, deterministic=det, numerics=args.numerics, tf32=args.tf32,
                 horizontal=args.horizontal)


def to_cli(accel: Accel) -> list[str]:
    """The flags that give ``accel`` back through :func:`from_args` (for worker processes): the
    policy and its overrides."""
    out = ["--numerics", accel.numerics]
    for name, value in sorted(accel.overrides().items()):
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool) and name != "deterministic":
            out.append(flag if value else "--no-" + name.replace("_", "-"))
        else:
            out += [flag, {True: "on", False: "off"}.get(value, value)]
    return out
