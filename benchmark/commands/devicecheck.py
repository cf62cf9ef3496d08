"""device-check: the first command to run on a GPU machine, and one that cannot pass by skipping.

    python runner.py device-check [--out DIR] [--budget SECONDS] [--dry-run-cpu]

Runs seven steps in this order, in this process (the interpreter that runs ``runner.py``), on
``cuda`` (or, with ``--dry-run-cpu``, the same steps on the CPU, with the same code paths and
smaller sizes, so CI exercises everything but the device):

1. ``agreement`` (``--numerics strict``): each logit loss of ``benchmark.engine.losses.make_loss`` (ce, ls,
   kd, ats, atkd, mse) on fixed float32 logits on the device against the CPU, and one SGD step of a
   resnet8 on generated images on the device against the CPU: the largest relative difference of
   the loss, and of every parameter after the step (``max|a-b| / max|b|`` per tensor, so that a
   weight near zero does not divide by zero). Tolerances: ``LOSS_RTOL`` 1e-5 for a loss (fp32 with
   another summation order: a few ulps, 1.2e-7 each) and ``STEP_RTOL`` 1e-4 for the step (sums of
   up to a few hundred fp32 products per output, forward and backward; TF32, whose 10-bit mantissa
   rounds to about 5e-4 per product, lands above it: strict leaking TF32 fails here).
2. ``resume_fused`` (``--numerics reproducible``): a tiny run trained straight through against the
   same run stopped after epoch 1 and resumed, and two students (ce, ls) trained fused against
   apart; both must be bit-identical (metrics and weights' digest), as tests/test_train.py and
   tests/test_fuse.py check on the CPU.
3. ``canary``: the golden canary (benchmark/commands/canary.py) trained on the device and compared with
   ``goldens/canary.json`` by ``canary.compare``; on CUDA the platform differs (it names the
   device), so the comparison is the measured-drift one. The comparison made is recorded.
4. ``throughput``: ``bench`` (benchmark/commands/bench.py) at batch 64 and 128 under each numerics policy,
   images/s per case (the dry run: batch 2 and 4, one timed step, no loader workers).
   ``scaling``: issue 26's measurements by bench's own functions (bench_horizontal, packbench,
   decoderate): horizontal fusion at N = 1, 4, 8, 16 students as a ratio against the same students
   trained separately, packing at 1, 2 and 4 processes against one, and the image-folder decode
   rate per backend (pil; nvjpeg, which is nvJPEG on CUDA); the dry run at N = 1, 2, K = 1, 2.
5. ``decode``: one loader worker's images/s on generated JPEGs through ImageFolder and the ImageNet
   training transform (the host's CPU: the same on the dry run, with fewer images).
6. ``memory_syncs``: the engine's KD step's peak memory and host synchronisations per step,
   recorded (CUDA-only: ``not_applicable`` on the dry run, after running the same steps on the CPU).

A step is ``passed``, ``failed``, ``skipped`` or ``not_applicable``, and the exit code is 0 only when
every step ran and passed: a skipped step is not passed (exit 1). ``not_applicable`` is for a
measurement that is CUDA-only by nature (peak memory, host syncs) on the dry run, and passes there
only; on CUDA it would fail. A step that would start after ``--budget`` seconds
(default 480) is skipped; a step that ran longer than its own budget (``STEPS``) is failed, and so
is a step that raised (its error is the reason; the next steps still run). The steps run in this
process, so an over-long step is judged when it ends, not interrupted.
Processes per GPU are measured by ``scaling`` (bench's packing cases: K processes side by side).

``--out DIR`` is a folder (created if missing; default ``device-check``): it receives
``device-check.json``, ``device-check.md`` and ``calibration.json``, the cost model's calibration
fitted on the throughput and decode steps (benchmark/catalog/costmodel.py's form: the default devices plus one kind,
``measured``, so ``plan --calibration DIR/calibration.json --device-kind measured`` costs runs with
it; a dry run's is marked as a CPU measurement). An ``--out`` that exists and is not a folder, or
that cannot be made (a parent is a file), is bad input: exit 2, one line, nothing written.
Without a CUDA device (and without ``--dry-run-cpu``) the command exits 2 with one line.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInput

LOSSES = {"ce": {}, "ls": {"alpha": 0.1}, "kd": {"tau": 4.0}, "ats": {"tau1": 4.0, "tau2": 2.0}, "atkd": {},
          "mse": {}}
LOSS_RTOL = 1e-5
STEP_RTOL = 1e-4
DEFAULT_BUDGET = 480.0
JSON_FILE, MD_FILE, CALIBRATION_FILE = "device-check.json", "device-check.md", "calibration.json"
MEASURED_KIND = "measured"
# resume and fused: resnet8 on 40 generated CIFAR-10 images (2 steps an epoch), 2 epochs across an
# lr milestone: the smallest run with a resume inside it
TINY = {"dataset": "cifar10", "data": {"source": "synthetic", "synthetic": {"per_class": 4, "test_per_class": 1}},
        "model": "resnet8", "loss": {"name": "ce"},
        "recipe": {"epochs": 2, "batch_size": 16, "optimizer": {"lr": 0.05},
                   "schedule": {"name": "multistep", "milestones": [1], "gamma": 0.1}},
        "seed": 0}


@dataclass
class Check:
    """What the steps run on: the device, and the sizes (the dry run's are smaller)."""
    device: str
    dry_run: bool

    @property
    def bench_batches(self) -> tuple[int, int]:
        return (2, 4) if self.dry_run else (64, 128)


# ---------------------------------------------------------------- the comparison


def max_rel_diff(a, b) -> float:
    """``max|a-b| / max|b|`` (b the CPU's), 0 when both are zero; on the CPU, in float64."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    scale = float(b.abs().max()) if b.numel() else 0.0
    diff = float((a - b).abs().max()) if b.numel() else 0.0
    return diff / scale if scale > 0 else diff


# ---------------------------------------------------------------- 1. agreement


def _fixed_logits(n: int = 16, c: int = 10):
    """Float32 logits and labels made by integer arithmetic: the same bits on every platform."""
    import torch

    z_s = torch.tensor([[((i * 7919 + j * 104729) % 1000) / 125.0 - 4.0 for j in range(c)] for i in range(n)])
    z_t = torch.tensor([[((i * 6101 + j * 3571) % 1000) / 100.0 - 5.0 for j in range(c)] for i in range(n)])
    return z_s, z_t, torch.tensor([(i * 3) % c for i in range(n)])


def step_agreement(check: Check) -> dict:
    import torch

    from ..engine import accel
    from ..engine.losses import make_loss
    from ..engine.models import build_model

    dev = torch.device(check.device)
    for d in {dev, torch.device("cpu")}:
        accel.configure(accel.Accel(numerics="strict").resolved(d))
    z_s, z_t, y = _fixed_logits()
    losses = {}
    for name, params in LOSSES.items():
        loss = make_loss(name, **params)
        on = {d: loss(z_s.to(d), z_t.to(d) if loss.needs_teacher else None, y.to(d)) for d in (dev, "cpu")}
        losses[name] = max_rel_diff(on[dev], on["cpu"])

    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 32, 32, generator=g)
    labels = torch.randint(0, 10, (8,), generator=g)
    torch.manual_seed(0)
    cpu_net = build_model("resnet8", 10)
    nets = {"cpu": cpu_net, "device": build_model("resnet8", 10)}
    nets["device"].load_state_dict(cpu_net.state_dict())
    nets["device"].to(dev)
    step_loss = {}
    for key, net in nets.items():
        d = dev if key == "device" else torch.device("cpu")
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        loss = torch.nn.functional.cross_entropy(net(x.to(d)), labels.to(d))
        opt.zero_grad()
        loss.backward()
        opt.step()
        step_loss[key] = loss
    cpu_state = nets["cpu"].state_dict()
    params = {k: max_rel_diff(v, cpu_state[k]) for k, v in nets["device"].state_dict().items()
              if v.is_floating_point()}
    worst = max(params, key=params.get)
    step = {"loss": max_rel_diff(step_loss["device"], step_loss["cpu"]), "params": params[worst],
            "worst_param": worst}
    bad = [f"loss {n}: {r:.3g} > {LOSS_RTOL:g}" for n, r in losses.items() if not r <= LOSS_RTOL]
    bad += [f"one step, {k}: {step[k]:.3g} > {STEP_RTOL:g}" for k in ("loss", "params") if not step[k] <= STEP_RTOL]
    return {"passed": not bad, "why": "; ".join(bad) or None, "numerics": "strict",
            "loss_rtol": LOSS_RTOL, "step_rtol": STEP_RTOL, "losses_max_rel_diff": losses,
            "one_step_max_rel_diff": step}


# ---------------------------------------------------------------- 2. resume and fused


def step_resume_fused(check: Check) -> dict:
    import copy
    import tempfile

    from ..engine import config as C
    from ..engine.execution import ExecOptions
    from ..engine.train import train_run, train_runs
    from ..store.layout import Store

    class Stop(Exception):
        pass

    def stop_after_first(m):
        if m["epoch"] == 1:
            raise Stop

    def same(a, b) -> bool:
        return (a["metrics"], a["weights_digest"]) == (b["metrics"], b["weights_digest"])

    opts = ExecOptions(device=check.device)  # the default policy: reproducible
    cfg = C.resolve(copy.deepcopy(TINY))
    ls = C.resolve({**copy.deepcopy(TINY), "loss": {"name": "ls", "alpha": 0.1}})
    with tempfile.TemporaryDirectory(prefix="kd-device-check-") as tmp:
        apart_store = Store(Path(tmp) / "apart")
        straight = train_run(cfg, apart_store, opts)  # also the ce student trained apart
        apart = {C.run_id(cfg): straight, C.run_id(ls): train_run(ls, apart_store, opts)}
        resumed_store = Store(Path(tmp) / "resumed")
        try:  # stopped as a kill would, once epoch 1 is checkpointed (tests/helpers.stop_after_epoch)
            train_run(cfg, resumed_store, ExecOptions(device=check.device, on_epoch=stop_after_first))
        except Stop:
            pass
        resumed = train_run(cfg, resumed_store, opts)
        fused = train_runs([cfg, ls], Store(Path(tmp) / "fused"), opts)
    resume_ok = resumed.get("resumed_from_epoch") == 1 and same(straight, resumed)
    fused_ok = all(same(fused[rid], res) for rid, res in apart.items())
    bad = ([] if resume_ok else ["resumed after epoch 1 differs from straight through"]) + \
          ([] if fused_ok else ["fused differs from apart"])
    return {"passed": not bad, "why": "; ".join(bad) or None, "numerics": "reproducible",
            "resume": {"identical": resume_ok, "resumed_from_epoch": resumed.get("resumed_from_epoch"),
                       "weights_digest": [straight["weights_digest"], resumed["weights_digest"]]},
            "fused": {"identical": fused_ok,
                      "weights_digest": {rid: [fused[rid]["weights_digest"], res["weights_digest"]]
                                         for rid, res in apart.items()}}}


# ---------------------------------------------------------------- 3. canary


def step_canary(check: Check) -> dict:
    from . import canary

    golden = canary.load_golden()
    if golden is None:
        return {"passed": False, "why": f"{canary.GOLDEN_FILE} missing or unreadable"}
    numbers = canary.run(device=check.device)
    exact, found = canary.compare(golden, numbers)
    return {"passed": not found, "why": "; ".join(found[:5]) or None, "comparison": canary.describe_mode(golden, exact),
            "exact": exact, "differences": found, "platform": numbers["platform"]}


# ---------------------------------------------------------------- 4. throughput


def step_throughput(check: Check) -> dict:
    from ..engine.accel import Accel
    from ..engine.numerics import POLICIES
    from .bench import run_bench

    small = {"steps": 1, "warmup": 0, "images": 200, "loader_workers": 0} if check.dry_run else \
        {"steps": 30, "warmup": 5}
    out = {}
    for policy in POLICIES:
        for batch in check.bench_batches:
            res = run_bench(check.device, batch_size=batch, accel=Accel(numerics=policy), **small)
            out[f"{policy}@{batch}"] = {"policy": policy, "batch_size": batch,
                                        "images_per_s": {c["name"]: round(c["images_per_s"], 2) for c in res["cases"]},
                                        "engine_seconds_per_step": res["cases"][1]["seconds"] / res["cases"][1]["steps"],
                                        "read_back": res["read_back"]}
    return {"passed": True, "why": None, "bench": out}


# ---------------------------------------------------------------- 4b. fusion, packing, decode per backend

# Issue 26's measurements, as ``bench`` makes them (its own functions: bench_horizontal, packbench,
# decoderate): horizontal fusion at N students against the same N trained separately, K processes
# side by side against one, and the image-folder decode rate per backend. The dry run: the least
# that runs every path (N = 1, 2; K = 1, 2; 8 JPEGs).
SCALING = {"horizontal_sizes": (1, 4, 8, 16), "packing": (1, 2, 4), "decode_images": 256, "steps": 20, "warmup": 3}
SCALING_DRY = {"horizontal_sizes": (1, 2), "packing": (1, 2), "decode_images": 8, "steps": 1, "warmup": 0,
               "images": 200, "loader_workers": 0}


def step_scaling(check: Check) -> dict:
    """Horizontal fusion, packing and decode per backend (``bench --horizontal-sizes 1,4,8,16
    --packing 1,2,4``) at the smaller bench batch, under ``--numerics reproducible``."""
    from .bench import run_bench

    sizes = SCALING_DRY if check.dry_run else SCALING
    res = run_bench(check.device, batch_size=check.bench_batches[0], **sizes)
    fusion = {str(c["students"]): round(c["ratio"], 3) for c in res["horizontal"]}
    packing = {str(c["processes"]): round(c["ratio"], 3) for c in res["packing"]["cases"]}
    decode = {r["backend"]: {"images_per_s": r["images_per_s"], "decoder": r["decoder"]} for r in res["decode"]}
    numbers = [*fusion.values(), *packing.values(), *(d["images_per_s"] for d in decode.values())]
    ok = all(v > 0 for v in numbers) and len(fusion) == len(sizes["horizontal_sizes"])
    return {"passed": ok, "why": None if ok else "a measurement is missing or not positive",
            "batch_size": res["batch_size"], "horizontal_ratio_vs_separate": fusion,
            "packing_ratio_vs_one_process": packing, "packing_note": res["packing"]["note"], "decode": decode}


# ---------------------------------------------------------------- 5. decode


def step_decode(check: Check) -> dict:
    """One loader worker's rate: generated 500x375 JPEGs (ImageNet's usual size) through
    torchvision's ImageFolder and the ImageNet training transform (benchmark/engine/data/transforms.py),
    in this process, as one DataLoader worker does. The pictures are smooth colour fields with
    noise, so a JPEG's entropy sits between a flat picture's and a photograph's: a rough figure,
    said so in the calibration. The host's CPU, whatever the device: the dry run runs it as is,
    with fewer images."""
    import tempfile

    import numpy as np
    from PIL import Image
    from torchvision.datasets import ImageFolder

    from ..engine.data import make_transforms

    count = 8 if check.dry_run else 256
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="kd-device-check-jpeg-") as tmp:
        for i in range(count):
            folder = Path(tmp) / f"class{i % 4}"
            folder.mkdir(exist_ok=True)
            field = np.kron(rng.integers(0, 256, (24, 32, 3)), np.ones((16, 16, 1)))[:375, :500]
            pixels = np.clip(field + rng.normal(0, 12, field.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)
        dataset = ImageFolder(tmp, transform=make_transforms("imagenet", "train"))
        dataset[0]  # the first item pays for imports and caches
        t0 = time.perf_counter()
        for i in range(len(dataset)):
            x, _ = dataset[i]
        seconds = time.perf_counter() - t0
    rate = len(dataset) / seconds
    return {"passed": x.shape == (3, 224, 224) and rate > 0, "why": None if x.shape == (3, 224, 224) else
            f"the transform gave {tuple(x.shape)}", "images": len(dataset), "image_size": [500, 375],
            "images_per_s_per_worker": round(rate, 1)}


# ---------------------------------------------------------------- 6. memory and host syncs


def step_memory_syncs(check: Check) -> dict:
    """The engine's KD step (resnet56 -> resnet20, as ``bench``) at batch 128 (the CPU: 4), in a
    steady epoch: the peak memory of the steps (``torch.cuda.max_memory_allocated``) and the host
    synchronisations per step (``torch.cuda.set_sync_debug_mode("warn")``, its warnings counted).
    Recorded, not judged: the suite claims no per-step synchronisation, and this shows whether
    CUDA agrees. CUDA-only by nature: on the dry run the same steps run on the CPU and both numbers
    are ``not applicable`` (which passes on the dry run only)."""
    import tempfile
    import warnings

    import torch

    from ..engine import accel
    from ..engine import config as C
    from ..engine.data import get_spec, synthetic_arrays
    from ..engine.models import build_model
    from ..engine.pipeline import Augmentation, TensorPipeline
    from ..engine.train import TrainingRun
    from ..store.layout import Store

    dev, cuda = torch.device(check.device), check.device.startswith("cuda")
    batch, steps = (128, 20) if cuda else (4, 2)  # on the CPU no number applies: the least that runs
    opts = accel.Accel().resolved(dev)
    accel.configure(opts)
    spec = get_spec("cifar100")
    train = synthetic_arrays("cifar100", "train", per_class=max(1, batch * (steps + 2) // 100 + 1))
    pipe = TensorPipeline(train, synthetic_arrays("cifar100", "test", per_class=1), spec.mean, spec.std,
                          Augmentation(4, True), batch_size=batch, drop_last=True, device=dev)
    torch.manual_seed(0)
    teacher = build_model("resnet56", 100).to(dev).eval()
    cfg = C.resolve({"dataset": "cifar100", "data": {"source": "synthetic"}, "model": "resnet20",
                     "teacher": {"run": "0" * 16}, "loss": {"name": "kd", "tau": 4.0},
                     "recipe": {"epochs": 2, "batch_size": batch}})
    with tempfile.TemporaryDirectory(prefix="kd-device-check-") as tmp:
        student = TrainingRun(cfg, Store(tmp), dev, opts)
        student.begin_epoch(1)  # a steady epoch: epoch 0 also records its first steps' losses
        batches = iter(pipe.train_batches(0, 1))

        def one_step():
            x, y = next(batches)
            with torch.no_grad():
                z_t = teacher(x)
            student.step(x, y, z_t)

        one_step()  # the first step allocates the optimizer's state
        if cuda:
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for _ in range(steps):
                    one_step()
        finally:
            if cuda:
                torch.cuda.set_sync_debug_mode(0)
        syncs = [w for w in caught if "synchroniz" in str(w.message)]
    if not cuda:
        return {"passed": True, "why": None, "status": "not_applicable", "batch_size": batch, "steps": steps,
                "peak_memory_mib": None, "syncs_per_step": None}
    return {"passed": True, "why": None, "batch_size": batch, "steps": steps,
            "peak_memory_mib": round(torch.cuda.max_memory_allocated(dev) / 2**20, 1),
            "syncs_per_step": len(syncs) / steps, "sync_sites": sorted({str(w.message)[:200] for w in syncs})[:5]}


@dataclass(frozen=True)
class Step:
    name: str
    run: object
    budget_s: float  # its own budget: a step that ran longer failed


STEPS = (Step("agreement", step_agreement, 60), Step("resume_fused", step_resume_fused, 90),
         Step("canary", step_canary, 120), Step("throughput", step_throughput, 180), Step("scaling", step_scaling, 180),
         Step("decode", step_decode, 30),
         Step("memory_syncs", step_memory_syncs, 60))


# ---------------------------------------------------------------- calibration


def calibration(check: Check, throughput: dict, device_name: str, decode: dict | None = None) -> dict:
    """The default calibrations plus kind ``measured``, fitted on the engine's seconds per step
    at the two batches: ``t(b) = a + c*b``; ``a`` over the step's layer passes is the per-layer
    time, ``flops per image / c`` the effective FLOP/s (written as the peak, efficiency 1). fp32
    from ``reproducible`` (tf32 too: the cost model costs reproducible and strict as fp32), bf16
    from ``fast``. A fit with a negative slope or intercept (timing noise) falls back to each bound
    alone at the batch that shows it best: compute at the larger batch, overhead at the smaller.
    The loader's rate is the decode step's when it ran, else the default file's."""
    from ..catalog.costmodel import DEFAULT_FILE
    from ..catalog.flops import forward_flops, layer_count

    doc = json.loads(DEFAULT_FILE.read_text())
    flops = 3 * forward_flops("resnet20", 100, 32) + forward_flops("resnet56", 100, 32)
    passes = 3 * layer_count("resnet20", 100) + layer_count("resnet56", 100)
    small, large = check.bench_batches
    rates, fits = {}, {}
    for precision, policy in (("fp32", "reproducible"), ("bf16", "fast")):
        t1 = throughput[f"{policy}@{small}"]["engine_seconds_per_step"]
        t2 = throughput[f"{policy}@{large}"]["engine_seconds_per_step"]
        c = (t2 - t1) / (large - small)
        a = t1 - c * small
        if c > 0 and a > 0:
            rates[precision], fits[precision] = (flops / c, a / passes), "linear fit over both batches"
        else:
            rates[precision], fits[precision] = (flops * large / t2, t1 / passes), "fallback (noisy fit)"
    rates["tf32"] = rates["fp32"]
    layer_pass_us = min(r[1] for r in rates.values()) * 1e6
    what = "a CPU measurement (device-check --dry-run-cpu), not a GPU's" if check.dry_run else "measured"
    doc["devices"][MEASURED_KIND] = {
        "name": f"{device_name} ({what})",
        "peak_tflops": {p: r[0] / 1e12 for p, r in sorted(rates.items())},
        "efficiency": {p: 1.0 for p in rates},
        "layer_pass_us": layer_pass_us,
        "source": f"runner.py device-check on {device_name}, {time.strftime('%Y-%m-%d')}: bench's engine step "
                  f"(resnet56 -> resnet20, batch {small} and {large}); peak_tflops are the measured effective "
                  f"rates (efficiency 1.0); fp32 {fits['fp32']}, bf16 {fits['bf16']}."}
    if decode and "images_per_s_per_worker" in decode:
        doc["loader"] = {"images_per_s_per_worker": decode["images_per_s_per_worker"],
                         "source": f"runner.py device-check on this host's CPU: {decode['images']} generated 500x375 "
                                   "JPEGs through ImageFolder and the ImageNet training transform, one process"}
    doc["measured_by"] = {"device": device_name, "dry_run_cpu": check.dry_run}
    return doc


# ---------------------------------------------------------------- the command


def out_folder(out) -> Path:
    """--out as a folder: bad input when it exists as a file or a parent of it is a file."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise BadInput("--out", None, f"{path} is a file, not a folder")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise BadInput("--out", None, f"{path}: {parent} is a file, not a folder")
    for name in (JSON_FILE, MD_FILE, CALIBRATION_FILE):
        if (path / name).is_dir():
            raise BadInput("--out", None, f"{path / name} is a folder, not a file")
    return path


def run_check(out, dry_run_cpu: bool = False, budget: float = DEFAULT_BUDGET, log=lambda _msg: None) -> int:
    """Run the steps, write the report and the calibration under ``out``; the exit code."""
    import platform

    import torch

    folder = out_folder(out)
    if not dry_run_cpu and not torch.cuda.is_available():
        raise BadInput("device-check", None, "no CUDA device on this machine: run it on a GPU machine, or add "
                                             "--dry-run-cpu to run the same steps on the CPU")
    check = Check("cpu" if dry_run_cpu else "cuda", dry_run_cpu)
    device_name = (f"cpu ({platform.processor() or platform.machine()})" if dry_run_cpu
                   else torch.cuda.get_device_name(0))
    threads = torch.get_num_threads()
    if dry_run_cpu:  # one thread, as the tests run: OpenMP's waits swamp tiny kernels on busy cores
        torch.set_num_threads(1)
    try:
        report = _run_steps(check, device_name, budget, log)
    finally:
        torch.set_num_threads(threads)
    steps = {s["name"]: s for s in report["steps"]}
    cal = None
    if "bench" in steps.get("throughput", {}):  # it ran (over its budget or not): what it measured
        cal = calibration(check, steps["throughput"]["bench"], device_name, steps.get("decode"))
        report["calibration"] = CALIBRATION_FILE
    folder.mkdir(parents=True, exist_ok=True)
    (folder / JSON_FILE).write_text(json.dumps(report, indent=1, default=str) + "\n")
    (folder / MD_FILE).write_text(markdown(report))
    if cal is not None:
        (folder / CALIBRATION_FILE).write_text(json.dumps(cal, indent=1) + "\n")
    log(f"device-check: wrote {folder / JSON_FILE}, {folder / MD_FILE}"
        + (f", {folder / CALIBRATION_FILE}" if cal else ""))
    return 0 if report["passed"] else 1


def _run_steps(check: Check, device_name: str, budget: float, log) -> dict:
    """Every step in order, each passed, failed or skipped (the module docstring's rules)."""
    import torch

    report = {"device": device_name, "device_kind": check.device, "dry_run_cpu": check.dry_run,
              "torch": torch.__version__, "cuda": torch.version.cuda, "budget_s": budget,
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "steps": []}
    start = time.monotonic()
    for step in STEPS:
        elapsed = time.monotonic() - start
        if elapsed >= budget:
            entry = {"name": step.name, "status": "skipped", "seconds": 0.0,
                     "why": f"would start at {elapsed:.0f} s, past the budget of {budget:g} s"}
        else:
            log(f"device-check: {step.name} ...")
            t0 = time.monotonic()
            try:
                numbers = step.run(check)
            except Exception as err:  # a step that raises (an op CUDA refuses) fails; the next ones still run
                numbers = {"passed": False, "why": f"raised {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}
            seconds = time.monotonic() - t0
            passed, why = numbers.pop("passed"), numbers.pop("why")
            status = numbers.pop("status", "passed" if passed else "failed")
            if passed and seconds > step.budget_s:
                passed, why = False, f"took {seconds:.0f} s, over its budget of {step.budget_s:g} s"
            if not passed:
                status = "failed"
            entry = {"name": step.name, "status": status, "seconds": round(seconds, 2),
                     "budget_s": step.budget_s, "why": why, **numbers}
        report["steps"].append(entry)
        log(f"device-check: {step.name}: {entry['status']}" + (f" ({entry['why']})" if entry.get("why") else ""))
    report["seconds"] = round(time.monotonic() - start, 2)
    ok = ("passed", "not_applicable") if check.dry_run else ("passed",)
    report["passed"] = bool(report["steps"]) and all(s["status"] in ok for s in report["steps"])
    return report


def markdown(report: dict) -> str:
    lines = [f"# device-check on {report['device']}", "",
             f"torch {report['torch']}, CUDA {report['cuda']}, {report['started']}"
             + (" - **dry run on the CPU**: no GPU measured" if report["dry_run_cpu"] else ""), "",
             f"**{'passed' if report['passed'] else 'NOT passed'}** ({report['seconds']} s; every step must run "
             "and pass)", "", "| step | status | seconds | why |", "|---|---|---|---|"]
    for s in report["steps"]:
        lines.append(f"| {s['name']} | {s['status']} | {s['seconds']} | {s.get('why') or ''} |")
    for s in report["steps"]:
        if s["name"] == "agreement" and s["status"] != "skipped":
            lines += ["", f"## agreement (strict; loss rtol {s['loss_rtol']:g}, step rtol {s['step_rtol']:g})", ""]
            lines += [f"- loss {n}: {r:.3g}" for n, r in s["losses_max_rel_diff"].items()]
            st = s["one_step_max_rel_diff"]
            lines.append(f"- one SGD step of resnet8: loss {st['loss']:.3g}, parameters {st['params']:.3g} "
                         f"({st['worst_param']})")
        if s["name"] == "canary" and s["status"] != "skipped" and "comparison" in s:
            lines += ["", f"## canary: {s['comparison']}", ""] + [f"- {d}" for d in s["differences"]]
        if s["name"] == "decode" and "images_per_s_per_worker" in s:
            lines += ["", f"## decode: {s['images_per_s_per_worker']} images/s per loader worker "
                          f"({s['images']} generated JPEGs, ImageNet's training transform)"]
        if s["name"] == "scaling" and "horizontal_ratio_vs_separate" in s:
            fusion = ", ".join(f"N={n}: {r}" for n, r in s["horizontal_ratio_vs_separate"].items())
            packing = ", ".join(f"K={k}: {r}" for k, r in s["packing_ratio_vs_one_process"].items())
            decode = ", ".join(f"{b}: {d['images_per_s']}" for b, d in s["decode"].items())
            lines += ["", f"## scaling (batch {s['batch_size']})", "",
                      f"- horizontal fusion, separate / batched time: {fusion}",
                      f"- packing, images/s against one process: {packing} ({s['packing_note']})",
                      f"- image-folder decode, images/s: {decode}"]
        if s["name"] == "memory_syncs" and s["status"] in ("passed", "not_applicable"):
            numbers = ("not applicable on the CPU" if s["peak_memory_mib"] is None else
                       f"peak {s['peak_memory_mib']} MiB, {s['syncs_per_step']} host syncs per step")
            lines += ["", f"## memory and host syncs (KD step, batch {s['batch_size']}): {numbers}"]
        if s["name"] == "throughput" and s["status"] != "skipped":
            lines += ["", "## throughput (images/s)", "", "| policy | batch | reference | engine | engine_fused4 |",
                      "|---|---|---|---|---|"]
            for b in s["bench"].values():
                ips = b["images_per_s"]
                lines.append(f"| {b['policy']} | {b['batch_size']} | {ips.get('reference')} | {ips.get('engine')} | "
                             f"{ips.get('engine_fused4')} |")
    return "\n".join(lines) + "\n"
