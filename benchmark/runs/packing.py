"""Packing: K worker processes share each visible GPU (``reproduce --workers-per-gpu K``).

A small CIFAR student at batch 64 is launch-bound: one process leaves the GPU idle between its
kernels, and another process's kernels fill those gaps. Where the workers go:

- **visible GPUs** are the entries of the parent's ``CUDA_VISIBLE_DEVICES`` (the user's or the
  scheduler's mask), else every GPU of the machine. Every entry must name a GPU that exists
  (an index below the machine's count, or a GPU UUID it lists): ``CUDA_VISIBLE_DEVICES=7`` on a
  one-GPU machine is bad input, not a silent fall-back to GPU 0. A ``MIG-`` entry is taken as
  given (nvidia-smi's GPU list cannot check it). Without CUDA (``--device cpu``) the mask names
  nothing this suite uses: it is neither checked nor changed, and the K workers share the cores.
- **each worker** gets one entry of that mask as its own ``CUDA_VISIBLE_DEVICES``, round-robin
  (entries e0, e1 and K=2: workers e0, e1, e0, e1), so a worker never sees a GPU outside the mask.
  SLURM jobs (submitit) do the same per task: K tasks per GPU of the job, task r on entry r mod G
  of the job's own mask.
- **auto** (the default) is 1 on the CPU, and on CUDA 1 unless the runs to train are mostly
  overhead-bound in the cost model (benchmark/catalog/costmodel.py: launch-bound, so packing pays);
  then K = min(MAX_AUTO, what the visible GPUs' free memory holds, the CPU cores per GPU), where a
  worker needs CUDA_CONTEXT_BYTES plus the largest run's training memory (memory_bytes) times
  MEMORY_SLACK. Under SLURM the nodes' free memory is not known where the jobs are submitted, so
  auto is 1 there: give ``--workers-per-gpu K``.

The machine's GPUs come from ``nvidia-smi`` (it sees every GPU whatever the mask, and reading it
starts no CUDA context in this process); functions take that inventory as an argument, so tests
give a list of GPUs instead of a machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache

from ..errors import BadInput

MASK = "CUDA_VISIBLE_DEVICES"
OPTION = "--workers-per-gpu"
# Beyond 4 processes per GPU each needs its own CPU core to launch kernels and the GPU
# time-slices between more contexts: the cap of auto (an explicit K may go higher).
MAX_AUTO = 4
# A process's CUDA context and cuDNN/cuBLAS workspaces before any tensor: about 0.5 GB on recent
# GPUs (an assumption; device-check's peak memory is the allocator's, not the context's).
CUDA_CONTEXT_BYTES = 600 * 2**20
MEMORY_SLACK = 1.5      # the allocator's caching and fragmentation over the counted tensors
FREE_FRACTION = 0.9     # of a GPU's free memory that auto plans to fill
BYTES = 4               # float32 weights, gradients, activations


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str
    free_bytes: int | None = None


@dataclass(frozen=True)
class Placement:
    """The workers of a session: how many, per GPU, each one's mask (None on the CPU), and why."""
    workers: int
    per_gpu: int
    masks: list[str] | None
    why: str


# ---------------------------------------------------------------- the option


def parse_per_gpu(value) -> int | None:
    """``--workers-per-gpu``: ``auto`` (None) or a whole number >= 1; else one line, exit 2."""
    if value is None or str(value) == "auto":
        return None
    try:
        k = int(str(value))
    except ValueError:
        k = None
    if k is None or k < 1:
        raise BadInput(OPTION, None, f"must be auto or a whole number >= 1, got {value!r}")
    return k


# ---------------------------------------------------------------- the machine and the mask


def gpu_inventory() -> list[Gpu] | None:
    """Every GPU of the machine as nvidia-smi lists them (physical order, free memory); None
    when there is no nvidia-smi or it fails (no driver)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=index,uuid,memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    gpus = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[0].isdigit():
            free = int(parts[2]) * 2**20 if parts[2].isdigit() else None
            gpus.append(Gpu(int(parts[0]), parts[1], free))
    return gpus


def visible_devices(env: dict | None = None, inventory: list[Gpu] | None = None) -> list[str]:
    """The GPUs workers may use, as CUDA_VISIBLE_DEVICES entries: the mask's, each checked
    against ``inventory`` (when known), or every GPU of the inventory without a mask."""
    env = os.environ if env is None else env
    mask = env.get(MASK)
    if mask is None:
        return [str(g.index) for g in inventory or []]
    entries = [e.strip() for e in mask.split(",")]
    if not mask.strip() or any(not e for e in entries):
        raise BadInput(MASK, None, f"{mask!r} names no GPU (an empty entry); unset it to use every GPU")
    if len(set(entries)) < len(entries):
        raise BadInput(MASK, None, f"{mask!r} names a GPU twice")
    if inventory is not None:
        for e in entries:
            if not _exists(e, inventory):
                have = ", ".join(f"{g.index} ({g.uuid})" for g in inventory) or "none"
                raise BadInput(MASK, None, f"{mask!r}: no GPU {e!r} on this machine (its GPUs: {have})")
    return entries


def _exists(entry: str, inventory: list[Gpu]) -> bool:
    if entry.isdigit():
        return int(entry) < len(inventory)
    if entry.startswith("MIG-"):
        return True  # a MIG instance: nvidia-smi's GPU list cannot check it (module docstring)
    return _gpu_of(entry, inventory) is not None


def _gpu_of(entry: str, inventory: list[Gpu]) -> Gpu | None:
    """The inventory's GPU a mask entry names (None: unknown, e.g. a MIG instance). An index is
    nvidia-smi's (PCI order); CUDA numbers by speed unless CUDA_DEVICE_ORDER=PCI_BUS_ID, so on a
    machine of mixed GPUs the free memory read may be another visible GPU's."""
    for g in inventory:
        if entry == str(g.index) or (entry.startswith("GPU-") and g.uuid.startswith(entry)):
            return g
    return None


def torch_visible() -> list[str]:
    """Without nvidia-smi (and without a mask): the GPUs torch counts in this process."""
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def worker_masks(visible: list[str], workers: int) -> list[str]:
    """Each worker's CUDA_VISIBLE_DEVICES: one entry of ``visible``, round-robin."""
    return [visible[i % len(visible)] for i in range(workers)]


def task_mask(mask: str | None, local_rank: int) -> str | None:
    """A SLURM task's own GPU: entry ``local_rank`` mod G of its job's mask (None: no mask)."""
    if not mask:
        return None
    entries = [e.strip() for e in mask.split(",") if e.strip()]
    return entries[local_rank % len(entries)] if entries else None


# ---------------------------------------------------------------- how many per GPU


def check_mask(device: str, launcher: str = "local", env: dict | None = None, inventory=None) -> None:
    """The parent's mask checked before anything is written (local CUDA workers only: SLURM's
    nodes have their own masks, and the CPU uses none)."""
    if device.startswith("cuda") and launcher == "local":
        visible_devices(env, gpu_inventory() if inventory is None else inventory or None)


def place(device: str, per_gpu: int | None, workers: int = 0, runs=(), env: dict | None = None,
          inventory=None, cpus: int | None = None) -> Placement:
    """The local workers of a session. ``per_gpu``: K, or None for auto; ``workers``: an explicit
    total (``--workers``; they go round-robin over the visible GPUs), 0 for visible x K;
    ``runs``: the RunShape of every run to train (auto's memory and bound); ``inventory``: the
    machine's GPUs (default: nvidia-smi's)."""
    cpus = cpus or os.cpu_count() or 1
    if not device.startswith("cuda"):
        k = per_gpu or 1
        n = workers or k
        return Placement(n, k, None, f"{n} CPU worker(s) sharing {cpus} cores"
                                     + ("" if per_gpu else " (auto: 1 on the CPU)"))
    inventory = gpu_inventory() if inventory is None else inventory
    visible = visible_devices(env, inventory or None) or (torch_visible() if not inventory else [])
    if not visible:
        raise BadInput("--device", None, f"{device}: no GPU is visible (nvidia-smi lists none and {MASK} is unset)")
    if per_gpu:
        k, why = per_gpu, f"{per_gpu} per GPU ({OPTION})"
    else:
        k, why = auto_per_gpu(runs, [_gpu_of(e, inventory or []) for e in visible], len(visible), cpus)
    n = workers or len(visible) * k
    return Placement(n, k, worker_masks(visible, n), f"{n} worker(s) on GPU(s) {','.join(visible)}, {why}")


@dataclass(frozen=True)
class RunShape:
    """What auto needs of a run: its student (fused up to ``students`` of them), teacher, batch,
    input, and the cost model's bound and hours."""
    model: str
    teacher: str | None
    classes: int
    side: int
    batch: int
    bound: str = ""
    hours: float = 0.0
    students: int = 1


def auto_per_gpu(runs, gpus: list[Gpu | None], n_visible: int, cpus: int) -> tuple[int, str]:
    """K for ``--workers-per-gpu auto`` on CUDA, and why (the module docstring)."""
    runs = list(runs)
    hours = sum(r.hours for r in runs)
    overhead = sum(r.hours for r in runs if r.bound == "overhead")
    if not runs or hours <= 0 or overhead < hours / 2:
        return 1, "auto: 1 per GPU (the runs to train are not mostly overhead-bound: packing would not pay)"
    free = [g.free_bytes if g is not None else None for g in gpus]
    if not free or any(f is None for f in free):
        return 1, "auto: 1 per GPU (free memory unknown: no nvidia-smi, or a MIG instance)"
    need = CUDA_CONTEXT_BYTES + MEMORY_SLACK * max(memory_bytes(r) for r in runs)
    fits = int(min(free) * FREE_FRACTION // need)
    k = max(1, min(MAX_AUTO, fits, max(1, cpus // n_visible)))
    return k, (f"auto: {k} per GPU ({min(free) / 2**30:.1f} GiB free on the fullest GPU, "
               f"{need / 2**30:.2f} GiB per worker, {cpus} CPU cores, at most {MAX_AUTO})")


def memory_bytes(run: RunShape) -> float:
    """A worker's training memory for ``run``, float32: per student its weights, gradients and
    momentum and the activations autograd keeps (every layer's output for the batch); the
    teacher's weights and one batch of its activations (an upper bound: no grad, freed as it goes)."""
    s_params, s_acts = net_counts(run.model, run.classes, run.side)
    student = 3 * s_params + run.batch * s_acts
    teacher = 0.0
    if run.teacher:
        t_params, t_acts = net_counts(run.teacher, run.classes, run.side)
        teacher = t_params + run.batch * t_acts
    return BYTES * (run.students * student + teacher)


@lru_cache(maxsize=None)
def net_counts(model: str, classes: int, side: int) -> tuple[int, int]:
    """(parameters, activation elements per image: the outputs of every leaf module), counted on
    the meta device (no memory, no weights initialised)."""
    import torch

    from ..engine.models import build_model

    acts = [0]

    def count(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            acts[0] += output[0].numel()

    with torch.device("meta"):
        net = build_model(model, classes)
        hooks = [m.register_forward_hook(count) for m in net.modules() if not list(m.children())]
        net(torch.empty(1, 3, side, side))
    for h in hooks:
        h.remove()
    return sum(p.numel() for p in net.parameters()), acts[0]


def shapes(jobs: dict, job_ids, fuse_max: int = 1) -> list[RunShape]:
    """The RunShape of each run (``jobs``: run id -> a plan's Job: config, bound, gpu_hours)."""
    from ..catalog.runcost import sizes as _sizes  # the input side a config trains at (generated data has its own)
    from ..engine.data import get_spec

    out = []
    for rid in job_ids:
        job = jobs[rid]
        cfg = job.config
        ref = cfg.get("teacher") or {}
        teacher = jobs[ref["run"]].config["model"] if ref.get("run") in jobs else ref.get("model")
        out.append(RunShape(cfg["model"], teacher, get_spec(cfg["dataset"]).num_classes, _sizes(cfg)[0],
                            cfg["recipe"]["batch_size"], job.bound, job.gpu_hours, max(1, fuse_max)))
    return out


def cpu_threads(workers: int, cpus: int | None = None) -> int:
    """CPU workers share the cores instead of each taking all of them."""
    return max(1, (cpus or os.cpu_count() or 1) // max(1, workers))
