"""The cost model's rates: a training run's device time as the largest of three bounds.

Per epoch a run is bounded by

- **compute**: its FLOPs (train images x (3 x student forward + teacher forward); backward costs
  about twice the forward) at ``peak[precision] x efficiency[precision]`` of the device;
- **data**: the images/s the CPU loader delivers, ``workers x images/s per worker``, for datasets
  read from image files (PIL decode and augment per worker); data held in memory (CIFAR, SVHN,
  TinyImageNet, every generated stand-in) is never loader-bound;
- **overhead**: per step, every layer's forward (and the student's backward, counted as two more
  passes) takes at least ``layer_pass_us`` whatever its FLOPs: kernel launches and small,
  latency-bound kernels. A thin deep CIFAR net at batch 64 sits here.

The largest of the three, times the epochs, plus the evaluation (the student's forward over the
test set, the same three bounds) is the estimate. So the effective FLOP/s of a run depends on its
model (FLOPs per layer), its batch (steps per epoch), the numerics policy (fp32 for
``reproducible`` and ``strict``, bf16 for ``fast``) and the loader.

The numbers are data: ``calibrations.json`` beside this file (devices' peaks from their
datasheets, efficiencies and the per-layer time fitted on published training timings, each with
its source), or a file of the same form given with ``plan --calibration FILE``. The published
timings they were fitted on, and the ones they are checked against, are in
``tests/published_timings.yaml`` (tests/test_costmodel.py). No torch here: arithmetic on counts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import BadInput
from ..yamlfile import read_text

DEFAULT_FILE = Path(__file__).resolve().parent / "calibrations.json"
DEFAULT_DEVICE = "h100"
DEFAULT_POLICY = "reproducible"
# 16 loader processes per GPU: NVIDIA's DGX-A100 configuration for ResNet-50 (DeepLearningExamples
# ConvNets configs.yml; ../shared/reference/published-timings.md row 11). `reproduce --num-workers`
# defaults to 4: plan with --loader-workers 4 to cost what that will do on a folder dataset.
DEFAULT_LOADER_WORKERS = 16
# The execution policy's arithmetic (the --numerics of reproduce and train): strict and reproducible
# run fp32 without TF32 on convolutions, fast runs bf16 autocast. "tf32" is PyTorch's own default
# for convolutions, kept for the published timings measured that way (NVIDIA's A100 "TF32" rows).
POLICY_PRECISION = {"reproducible": "fp32", "strict": "fp32", "fast": "bf16"}
PRECISIONS = ("fp32", "tf32", "bf16")
BOUNDS = ("compute", "data", "overhead")


@dataclass(frozen=True)
class Device:
    kind: str
    name: str
    peak: dict          # precision -> FLOP/s (datasheet)
    efficiency: dict    # precision -> fraction of the peak that large convolutions reach
    layer_pass_s: float  # the least time of one layer's pass in one step (the overhead bound)


@dataclass(frozen=True)
class Scaling:
    """Named assumptions of what packing and horizontal fusion do to a launch-bound run (the
    ``scaling`` section of calibrations.json, each with its source). Both share the per-step
    overhead bound between runs; compute and data bounds stay, so a run gains only as far as its
    overhead exceeds its compute (the launch-bound fraction):

    - packing: K processes per GPU (``workers_per_gpu``, auto's cap) fill each other's launch
      gaps; ``overlap`` of the ideal K-fold sharing is realised (time-slicing without MPS):
      overhead / (1 + (K - 1) x overlap);
    - horizontal fusion: N runs of one architecture and batch train as one batched model, one
      kernel per layer for N: overhead / min(N, ``fusion_factor``), N at most ``fusion_group_max``.
      ``fusion_upper_bound`` is HFTA's reported best (Wang et al., MLSys 2021: up to 15x on small
      models), kept as the upper bound; the factor is a conservative modelled value until a GPU
      measures it (``measured`` false)."""
    workers_per_gpu: int
    overlap: float
    fusion_factor: float
    fusion_upper_bound: float
    fusion_group_max: int
    measured: bool = False

    def packing_divisor(self) -> float:
        return 1.0 + (self.workers_per_gpu - 1) * self.overlap

    def fusion_divisor(self, group: int) -> float:
        return max(1.0, min(float(min(group, self.fusion_group_max)), self.fusion_factor))


@dataclass(frozen=True)
class Calibration:
    source: str                 # the file it was read from
    devices: dict               # kind -> Device
    loader_per_worker: float    # images/s one PIL loader worker decodes and augments (ImageNet-size JPEG)
    scaling: Scaling | None = None  # None: the package file's (a calibration file need not have its own)

    def scaling_or_default(self) -> Scaling:
        return self.scaling or _default().scaling

    def device(self, kind: str, where: str = "--device-kind") -> Device:
        dev = self.devices.get(str(kind).lower())
        if dev is None:
            raise BadInput(where, None, f"unknown device kind {kind!r}; known: {', '.join(sorted(self.devices))}")
        return dev


@dataclass(frozen=True)
class Net:
    """One network of a run: forward FLOPs per image and its layers (convolutions and linear)."""
    flops: float
    layers: int


@dataclass(frozen=True)
class Workload:
    """What a run does, in the units the model needs (catalog/runcost.py builds it from a run config)."""
    student: Net
    teacher: Net | None
    train_images: int
    test_images: int
    batch: int
    eval_batch: int
    epochs: int
    from_files: bool = False    # image files decoded by a CPU loader (ImageNet, CUB, Dogs)
    extra_train_epochs: int = 0  # a pre-training stage's epochs (AB, FT, FSP): training without evaluation
    final_train_eval: bool = False  # a last forward pass over the train set


@dataclass(frozen=True)
class Estimate:
    hours: float
    bound: str        # compute | data | overhead (of the training epochs); measured: a store's rate
    seconds: dict     # bound -> the run's seconds were that bound alone (the evaluation included)


def precision_of(policy: str) -> str:
    if policy not in POLICY_PRECISION:
        raise BadInput("--numerics", None, f"unknown policy {policy!r}; known: {', '.join(POLICY_PRECISION)}")
    return POLICY_PRECISION[policy]


def _phase(dev: Device, precision: str, images: int, batch: int, flops_per_image: float, passes: int,
           loader: float | None, measured: float | None, overhead_divisor: float = 1.0) -> dict:
    """Seconds of one pass over ``images`` under each bound. ``passes``: layer passes per step;
    ``loader``: images/s of the loader (None: data in memory); ``measured``: a store's effective
    FLOP/s, which stands for compute and overhead together (it was measured end to end);
    ``overhead_divisor``: how many runs share each layer pass's launch time (Scaling)."""
    steps = math.ceil(images / batch)
    if measured:
        compute, overhead = images * flops_per_image / measured, 0.0
    else:
        compute = images * flops_per_image / (dev.peak[precision] * dev.efficiency[precision])
        overhead = steps * passes * dev.layer_pass_s / overhead_divisor
    return {"compute": compute, "data": images / loader if loader else 0.0, "overhead": overhead}


def estimate(work: Workload, cal: Calibration, device: str = DEFAULT_DEVICE, policy: str = DEFAULT_POLICY,
             loader_workers: int = DEFAULT_LOADER_WORKERS, precision: str | None = None,
             measured_flops_per_s: float | None = None, overhead_divisor: float = 1.0) -> Estimate:
    """The run's device time (the module docstring). ``precision`` overrides the policy's (the
    published timings measured in TF32); ``measured_flops_per_s`` replaces compute and overhead;
    ``overhead_divisor`` > 1 models packing and fusion (Scaling): the per-step overhead shared."""
    dev = cal.device(device)
    precision = precision or precision_of(policy)
    if loader_workers < 1:
        raise BadInput("--loader-workers", None, f"must be at least 1, got {loader_workers}")
    loader = loader_workers * cal.loader_per_worker if work.from_files else None
    s, t = work.student, work.teacher
    train_flops = 3 * s.flops + (t.flops if t else 0.0)
    train_passes = 3 * s.layers + (t.layers if t else 0)
    phase = lambda images, batch, flops, passes: _phase(  # noqa: E731
        dev, precision, images, batch, flops, passes, loader, measured_flops_per_s, overhead_divisor)
    train = phase(work.train_images, work.batch, train_flops, train_passes)
    test = phase(work.test_images, work.eval_batch, s.flops, s.layers)
    final = phase(work.train_images, work.eval_batch, s.flops, s.layers)
    epochs, extra = work.epochs, work.extra_train_epochs
    total = (epochs + extra) * max(train.values()) + epochs * max(test.values()) \
        + (max(final.values()) if work.final_train_eval else 0.0)
    alone = {b: (epochs + extra) * train[b] + epochs * test[b] + (final[b] if work.final_train_eval else 0.0)
             for b in BOUNDS}
    bound = max(BOUNDS, key=lambda b: train[b])
    if measured_flops_per_s and bound != "data":
        bound = "measured"
    return Estimate(total / 3600, bound, alone)


# ---------------------------------------------------------------- calibration files


def _number(where, field: str, value, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadInput(where, field, f"must be a number, got {value!r}")
    if positive and value <= 0:
        raise BadInput(where, field, f"must be positive, got {value!r}")
    return float(value)


def _mapping(where, field: str, value) -> dict:
    if not isinstance(value, dict):
        raise BadInput(where, field, "missing" if value is None else f"must be a mapping, got {type(value).__name__}")
    return value


def parse_calibration(doc, where) -> Calibration:
    """A calibration document checked field by field; every problem a BadInput naming the field."""
    doc = _mapping(where, "(top level)", doc)
    loader = _mapping(where, "loader", doc.get("loader"))
    per_worker = _number(where, "loader.images_per_s_per_worker", loader.get("images_per_s_per_worker"))
    devices = {}
    for kind, entry in _mapping(where, "devices", doc.get("devices")).items():
        f = f"devices.{kind}"
        entry = _mapping(where, f, entry)
        peak = _mapping(where, f"{f}.peak_tflops", entry.get("peak_tflops"))
        eff = _mapping(where, f"{f}.efficiency", entry.get("efficiency"))
        devices[str(kind).lower()] = Device(
            kind=str(kind).lower(), name=str(entry.get("name") or kind),
            peak={p: _number(where, f"{f}.peak_tflops.{p}", peak.get(p)) * 1e12 for p in PRECISIONS},
            efficiency={p: _number(where, f"{f}.efficiency.{p}", eff.get(p)) for p in PRECISIONS},
            layer_pass_s=_number(where, f"{f}.layer_pass_us", entry.get("layer_pass_us")) * 1e-6)
    if not devices:
        raise BadInput(where, "devices", "names no device")
    return Calibration(str(where), devices, per_worker, _scaling(where, doc.get("scaling")))


def _scaling(where, doc) -> Scaling | None:
    if doc is None:
        return None
    doc = _mapping(where, "scaling", doc)
    f = "scaling."
    overlap = _number(where, f + "packing_overlap", doc.get("packing_overlap"), positive=False)
    if not 0 <= overlap <= 1:
        raise BadInput(where, f + "packing_overlap", f"must be from 0 to 1, got {overlap}")
    numbers = {k: _number(where, f + k, doc.get(k)) for k in
               ("packing_workers_per_gpu", "fusion_factor", "fusion_upper_bound", "fusion_group_max")}
    if any(numbers[k] < 1 for k in numbers):
        raise BadInput(where, "scaling", f"factors and counts must be >= 1, got {numbers}")
    return Scaling(int(numbers["packing_workers_per_gpu"]), overlap, numbers["fusion_factor"],
                   numbers["fusion_upper_bound"], int(numbers["fusion_group_max"]), doc.get("measured") is True)


def read_calibration(path: str | Path | None = None) -> Calibration:
    """The default calibrations (the package's calibrations.json), or a file of the same form."""
    if path is None:
        return _default()
    return _read(Path(path))


@lru_cache(maxsize=1)
def _default() -> Calibration:
    return _read(DEFAULT_FILE)


def _read(path: Path) -> Calibration:
    text = read_text(path)
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise BadInput(path, None, f"not JSON: {err}") from None
    return parse_calibration(doc, path)


def describe(cal: Calibration, device: str, policy: str, loader_workers: int, precision: str | None = None) -> dict:
    """What plan prints and puts in its JSON about the calibration an estimate used."""
    dev = cal.device(device)
    prec = precision or precision_of(policy)
    return {"device_kind": dev.kind, "device": dev.name, "policy": policy, "precision": prec,
            "effective_tflops": round(dev.peak[prec] * dev.efficiency[prec] / 1e12, 3),
            "layer_pass_us": round(dev.layer_pass_s * 1e6, 3), "loader_workers": loader_workers,
            "loader_images_per_s": round(loader_workers * cal.loader_per_worker, 1),
            "file": "default (benchmark/catalog/calibrations.json)" if Path(cal.source) == DEFAULT_FILE else cal.source}
