"""The golden canary: a few tiny runs whose numbers are committed, so that any numeric change shows.

Nine runs on the generated CIFAR-10 stand-in (160 training images, 2 epochs of resnet8s) touch
every loss family and every path of the trainer:

- a teacher (``ce``) and a label-smoothing student (``ls``), fused into one group;
- from that teacher, fused into a second group: ``kd`` (tau 4), ``kd`` at tau = inf (the
  KL-MSE limit), ``ats``, ``atkd``, ``mse``, ``fitnet`` (a feature method with an adapter) and
  ``ft`` (a feature method with a pre-training stage): a teacher -> student chain.

For each run the golden file (``goldens/canary.json``) holds the loss of each of the first steps,
every epoch's training loss and test accuracy, the final metrics, the weights' digest and the
run's loss on fixed logits (``loss_probe``, float64, no training), with the platform it was made on.

``compare`` checks a fresh canary against it: exactly (to the bit) when the platform matches (torch
version, machine, CPU model; the canary always runs on one thread). On another platform rounding
differs and training amplifies it (a feature loss by 2 % in three steps), so the tolerance is
measured, not guessed: ``--update`` also trains the canary again on the golden's platform, with
every input one float32 ulp away, with two threads, and on the vector kernels of the next lower
CPU capability (other summation orders and vector widths, as another CPU has), and records each
run's largest relative drift (and in test images); another platform must stay within
``DRIFT_MULTIPLE`` times it. The loss probe has nothing to amplify and is held to
``PROBE_RTOL``: a change to a logit loss's mathematics shows on any platform.
``runner.py canary`` runs it, ``runner.py canary --update`` rewrites the golden file (a reviewer
reads its diff), and ``tests/test_canary.py`` trains it in CI.
"""

from __future__ import annotations

import copy
import json
import math
import platform
import struct
import tempfile
from pathlib import Path

GOLDEN_FILE = Path(__file__).resolve().parents[2] / "goldens" / "canary.json"

BASE = {
    "dataset": "cifar10",
    "data": {"source": "synthetic", "synthetic": {"per_class": 16, "test_per_class": 4}},
    "model": "resnet8",
    "recipe": {"epochs": 2, "batch_size": 32, "optimizer": {"lr": 0.05},
               "schedule": {"name": "multistep", "milestones": [1], "gamma": 0.1},
               "bn_recalibration": True},
    "seed": 0,
}

# name -> loss; "teacher" marks the students distilled from the canary's teacher run.
NO_TEACHER = {"teacher-ce": {"name": "ce"}, "ls": {"name": "ls", "alpha": 0.1}}
FROM_TEACHER = {
    "kd": {"name": "kd", "tau": 4.0},
    "kd-tau-inf": {"name": "kd", "tau": math.inf},
    "ats": {"name": "ats", "tau1": 4.0, "tau2": 2.0},
    "atkd": {"name": "atkd"},
    "mse": {"name": "mse"},
    "fitnet": {"name": "fitnet"},
    "ft": {"name": "ft", "init_epochs": 1, "init_lr": 0.01},
}

# On another platform: each trained number within DRIFT_MULTIPLE x its run's measured drift (at
# least DRIFT_FLOOR relative, and one test image); the loss probe within PROBE_RTOL. Measured
# 2026-12-07: an Intel Xeon's canary (tests/fixtures/canary-xeon-2026-11-29.json) is within 1.7 x the
# drift measured on an AMD EPYC for every run; tau x 1.001 in the KD loss moves kd's probe by 9e-4.
DRIFT_MULTIPLE = 4.0
DRIFT_FLOOR = 1e-6
PROBE_RTOL = 1e-9
LOSS_KEYS = ("first_steps_loss", "epoch_train_loss", "init_stage_loss")
IMAGE_KEYS = ("epoch_test_top1", "top1", "top5", "train_top1")


def configs(perturbed: bool = False) -> dict[str, dict]:
    """The canary's resolved run configs, by name (teacher first). ``perturbed``: the same runs with
    one normalisation constant one ulp away (``perturbed_base``): how far rounding alone moves them."""
    from ..engine import config as C

    base = perturbed_base() if perturbed else BASE
    out = {}
    for name, loss in NO_TEACHER.items():
        out[name] = C.resolve({**copy.deepcopy(base), "loss": loss}, f"canary:{name}")
    teacher = {"run": C.run_id(out["teacher-ce"])}
    for name, loss in FROM_TEACHER.items():
        out[name] = C.resolve({**copy.deepcopy(base), "loss": loss, "teacher": teacher}, f"canary:{name}")
    return out


def perturbed_base() -> dict:
    """BASE with the dataset's std one float32 ulp larger in each channel: about half the inputs
    differ from BASE's in their last bit at every step, as another CPU's rounding makes the numbers
    differ."""
    from ..engine.data import get_spec

    spec = get_spec(BASE["dataset"])
    std = [_next_float32(s) for s in spec.std]
    return {**copy.deepcopy(BASE), "data": {**BASE["data"], "normalize": {"mean": list(spec.mean), "std": std}}}


def platform_key() -> dict:
    """What decides the canary's bits on the CPU: torch, the machine, the CPU model and the vector
    instructions torch's kernels use. A virtual machine may name only "AMD EPYC" for every
    generation, so the model is family/model/stepping as well: two EPYC generations gave different
    bits under the same name (2026-12-07)."""
    import torch

    first: dict[str, str] = {}  # the first processor's block of /proc/cpuinfo
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip() and first:
                break
            key, _, value = line.partition(":")
            first.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    cpu = first.get("model name") or platform.processor() or ""
    cpu_id = " ".join(f"{k} {first[k]}" for k in ("vendor_id", "cpu family", "model", "stepping") if k in first)
    return {"torch": torch.__version__, "machine": platform.machine(), "cpu": cpu, "cpu_id": cpu_id,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def _next_float32(x: float) -> float:
    """The float32 after float32(x) (the network sees float32: a float64 ulp would round away)."""
    bits = struct.unpack("<I", struct.pack("<f", x))[0]
    return struct.unpack("<f", struct.pack("<I", bits + 1))[0]


def run(store_root: str | None = None, log=lambda _msg: None, perturbed: bool = False, threads: int = 1,
        device: str = "cpu") -> dict:
    """Train the canary (on the CPU, one thread, unless ``device`` names another) and return its
    numbers in the golden layout. Off the CPU the platform names the device, so ``compare`` never
    asks a GPU's canary for the CPU's bits."""
    import torch

    from ..engine import config as C
    from ..engine.execution import ExecOptions
    from ..engine.train import train_runs
    from ..store.layout import Store

    cfgs = configs(perturbed)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # kernels may split sums differently on more threads
    try:
        with tempfile.TemporaryDirectory(prefix="kd-canary-") as tmp:
            store = Store(store_root or tmp)
            options = ExecOptions(device=device)
            for group in (NO_TEACHER, FROM_TEACHER):
                log(f"canary: training {', '.join(group)}")
                train_runs([cfgs[n] for n in group], store, options)
            runs = {name: _numbers(store, C.run_id(cfg), cfg) for name, cfg in cfgs.items()}
    finally:
        torch.set_num_threads(before)
    where = platform_key()
    if device != "cpu":
        where["device"] = torch.cuda.get_device_name(device) if device.startswith("cuda") else device
    return {"platform": where, "runs": runs}


def loss_probe(cfg: dict) -> float | None:
    """The run's loss (a logit loss of benchmark.engine.losses) on fixed float64 logits made by integer
    arithmetic, so every platform starts from the same bits; None for a feature method."""
    import torch

    from ..engine import methods

    if methods.entry(cfg["loss"]["name"]).taps:  # it needs the networks' features, not logits alone
        return None
    loss = methods.build(cfg["loss"]["name"], {k: v for k, v in cfg["loss"].items() if k != "name"})
    n, c = 8, 10
    z_s = torch.tensor([[((i * 7919 + j * 104729) % 1000) / 125.0 - 4.0 for j in range(c)] for i in range(n)],
                       dtype=torch.float64)
    z_t = torch.tensor([[((i * 6101 + j * 3571) % 1000) / 100.0 - 5.0 for j in range(c)] for i in range(n)],
                       dtype=torch.float64)
    y = torch.tensor([(i * 3) % c for i in range(n)])
    return float(loss(z_s, z_t if loss.needs_teacher else None, y))


def _numbers(store, rid: str, cfg: dict) -> dict:
    res = store.result(rid)
    if res is None or res.get("status") != "done":
        reason = (res or {}).get("reason", "no result")
        return {"id": rid, "failed": reason}
    hist = [h for h in store.metrics(rid) if "stage" not in h]  # pre-training stage lines come first
    m = res["metrics"]
    return {
        "id": rid,
        "first_steps_loss": hist[0].get("first_steps_loss", []),
        "epoch_train_loss": [h["train_loss"] for h in hist],
        "epoch_test_top1": [h["test_top1"] for h in hist],
        "init_stage_loss": [h["train_loss"] for h in (res.get("init_stages") or {}).get("history", [])],
        "top1": m["top1"], "top5": m["top5"], "train_top1": m["train_top1"],
        "test_images": _test_images(store, rid),
        "weights_digest": res["weights_digest"],
        "loss_probe": loss_probe(cfg),
    }


def _test_images(store, rid: str) -> int:
    import torch

    from ..store.layout import TEST_LOGITS

    saved = torch.load(store.run_file(rid, TEST_LOGITS), map_location="cpu", weights_only=True)
    return int(saved["labels"].numel())


def load_golden(path: Path = GOLDEN_FILE) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def measure_drift(plain: dict, perturbed: list[dict]) -> dict:
    """Per run, the largest relative difference of any trained loss number, and the largest
    difference in test images of any accuracy, between ``plain`` and each perturbed canary."""
    out = {}
    for name, g in plain["runs"].items():
        rel, images = 0.0, 0.0
        for other in perturbed:
            t = other["runs"].get(name, {})
            for key in LOSS_KEYS:
                for a, b in zip(g.get(key) or [], t.get(key) or []):
                    rel = max(rel, abs(a - b) / max(abs(a), 1e-12))
            for key in IMAGE_KEYS:
                a, b = g.get(key), t.get(key)
                pairs = zip(a, b) if isinstance(a, list) and isinstance(b, list) else [(a, b)]
                for x, y in pairs:
                    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
                        images = max(images, abs(x - y) * (g.get("test_images") or 1) / 100.0)
        out[name] = {"loss_rtol": rel, "images": round(images)}
    return out


# The vector kernels one step below each capability: ATEN_CPU_CAPABILITY picks torch's, and
# ONEDNN_MAX_CPU_ISA oneDNN's (the convolutions). Both are read when torch loads, so the run with
# them is a process of its own. Measured 2026-12-07: an AVX-512 EPYC made to use AVX2 reproduced the
# canary of the AVX2 EPYC that made the previous golden bit for bit.
LOWER_KERNELS = {"AVX512": ("avx2", "AVX2"), "AVX2": ("default", "SSE41")}


def run_with_lower_kernels(log=lambda _msg: None) -> dict | None:
    """The canary trained in a subprocess on the kernels of the next lower CPU capability (what
    another CPU would run); None where there is none below (or off x86)."""
    import os
    import subprocess
    import sys

    import torch

    lower = LOWER_KERNELS.get(torch.backends.cpu.get_cpu_capability())
    if lower is None:
        return None
    log(f"canary: training on the {lower[1]} kernels (a process of its own)")
    env = {**os.environ, "ATEN_CPU_CAPABILITY": lower[0], "ONEDNN_MAX_CPU_ISA": lower[1]}
    code = "import json, sys; from benchmark.commands import canary; json.dump(canary.run(), sys.stdout)"
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def golden_with_drift(store_root: str | None = None, log=lambda _msg: None) -> dict:
    """The canary, plus its drift measured here: an input one ulp away, two threads, and the kernels
    of the next lower CPU capability (other summation orders and vector widths, as another CPU has)."""
    numbers = run(store_root, log)
    log("canary: measuring the drift (inputs one ulp away, two threads, lower kernels)")
    perturbed = [run(None, log, perturbed=True), run(None, log, threads=2)]
    lower = run_with_lower_kernels(log)
    method = "max over: every input one float32 ulp away; two threads"
    if lower is not None:
        perturbed.append(lower)
        method += f"; the {lower['platform']['cpu_capability']} kernels"
    return {**numbers, "drift": {"method": method, "multiple": DRIFT_MULTIPLE,
                                 "runs": measure_drift(numbers, perturbed)}}


def write_golden(numbers: dict, path: Path = GOLDEN_FILE) -> Path:
    from ..store.layout import atomic_write_bytes

    atomic_write_bytes(Path(path), (json.dumps(numbers, indent=1, sort_keys=True) + "\n").encode())
    return Path(path)


def compare(golden: dict, tonight: dict) -> tuple[bool, list[str]]:
    """(exact?, differences): each difference names the run, the quantity and both values.

    Exact when the platforms match; otherwise each run's trained numbers within DRIFT_MULTIPLE x
    its measured drift (benchmark/commands/canary.py's docstring), the loss probe within PROBE_RTOL, and the
    weights' digest not compared."""
    exact = golden.get("platform") == tonight.get("platform")
    drift = (golden.get("drift") or {}).get("runs") or {}
    found = []
    for name in sorted(set(golden["runs"]) | set(tonight["runs"])):
        g, t = golden["runs"].get(name), tonight["runs"].get(name)
        if g is None or t is None:
            found.append(f"canary {name}: {'not in the golden file' if g is None else 'missing tonight'}")
            continue
        if g.get("id") != t.get("id"):
            found.append(f"canary {name}: run id {g.get('id')} -> {t.get('id')} (its config changed)")
        tolerance = _tolerance(drift.get(name), g.get("test_images") or 1)
        for key in sorted(set(g) | set(t)):
            if key == "id" or (key == "weights_digest" and not exact):
                continue
            a, b = g.get(key), t.get(key)
            if not _same(key, a, b, exact, tolerance):
                found.append(f"canary {name}: {key} golden {_show(a)}, tonight {_show(b)}")
    return exact, found


def _tolerance(drift: dict | None, test_images: int) -> dict:
    """A run's allowed differences on another platform: relative for losses, in percentage points
    for accuracies (a golden without a measured drift allows the floor and one image)."""
    drift = drift or {}
    return {"loss_rtol": max(DRIFT_FLOOR, DRIFT_MULTIPLE * float(drift.get("loss_rtol", 0.0))),
            "points": max(1, DRIFT_MULTIPLE * float(drift.get("images", 0))) * 100.0 / test_images + 1e-9}


def describe_mode(golden: dict, exact: bool) -> str:
    """Which comparison ``compare`` made, for the canary's and the nightly's output."""
    if exact:
        return "bit for bit (same platform)"
    measured = "measured drift" if golden.get("drift") else "drift floor (the golden has no measured drift)"
    return (f"within {DRIFT_MULTIPLE:g} x each run's {measured}, loss probe within {PROBE_RTOL:g} "
            f"(golden made on {_where(golden.get('platform') or {})})")


def _where(platform_: dict) -> str:
    """"AMD EPYC (vendor_id AuthenticAMD cpu family 26 model 2 stepping 1, AVX512)"."""
    detail = ", ".join(filter(None, [platform_.get("cpu_id"), platform_.get("cpu_capability")]))
    return f"{platform_.get('cpu')} ({detail})" if detail else str(platform_.get("cpu"))


def _same(key: str, a, b, exact: bool, tolerance: dict) -> bool:
    if exact or a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, list) or isinstance(b, list):
        return (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
                and all(_same(key, x, y, exact, tolerance) for x, y in zip(a, b)))
    if key in IMAGE_KEYS:
        return abs(a - b) <= tolerance["points"]
    if key == "loss_probe":
        return math.isclose(a, b, rel_tol=PROBE_RTOL, abs_tol=1e-12)
    if key in LOSS_KEYS:
        return math.isclose(a, b, rel_tol=tolerance["loss_rtol"], abs_tol=1e-9)
    return a == b


def _show(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)
    return str(v)
