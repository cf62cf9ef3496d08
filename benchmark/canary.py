"""The golden canary: a few tiny runs whose numbers are committed, so that any numeric change shows.

Nine runs on the generated CIFAR-10 stand-in (160 training images, 2 epochs of resnet8s) touch
every loss family and every path of the trainer:

- a teacher (``ce``) and a label-smoothing student (``ls``), fused into one group;
- from that teacher, fused into a second group: ``kd`` (tau 4), ``kd`` at tau = inf (the
  KL-MSE limit), ``ats``, ``atkd``, ``mse``, ``fitnet`` (a feature method with an adapter) and
  ``ft`` (a feature method with a pre-training stage): a teacher -> student chain.

For each run the golden file (``goldens/canary.json``) holds the loss of each of the first steps,
every epoch's training loss and test accuracy, the final metrics and the weights' digest, with
the platform it was made on. ``compare`` checks a fresh canary against it: exactly (to the bit)
when the platform matches (torch version, machine, CPU model; the canary always runs on one
thread), otherwise within ``CROSS_PLATFORM`` tolerances. ``runner.py canary`` runs it,
``runner.py canary --update`` rewrites the golden file (a reviewer reads its diff), and
``tests/test_canary.py`` trains it in CI.
"""

from __future__ import annotations

import copy
import json
import math
import platform
import tempfile
from pathlib import Path

GOLDEN_FILE = Path(__file__).resolve().parent.parent / "goldens" / "canary.json"

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

# Allowed differences when the golden file was made on another platform (float rounding differs
# between CPUs and torch versions; a real change to a loss moves the first step by far more).
CROSS_PLATFORM = {"loss_rtol": 1e-4, "loss_atol": 1e-6, "top1_images": 1}


def configs() -> dict[str, dict]:
    """The canary's resolved run configs, by name (teacher first)."""
    from . import config as C

    out = {}
    for name, loss in NO_TEACHER.items():
        out[name] = C.resolve({**copy.deepcopy(BASE), "loss": loss}, f"canary:{name}")
    teacher = {"run": C.run_id(out["teacher-ce"])}
    for name, loss in FROM_TEACHER.items():
        out[name] = C.resolve({**copy.deepcopy(BASE), "loss": loss, "teacher": teacher}, f"canary:{name}")
    return out


def platform_key() -> dict:
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"torch": torch.__version__, "machine": platform.machine(), "cpu": cpu}


def run(store_root: str | None = None, log=lambda msg: None) -> dict:
    """Train the canary (on the CPU, one thread) and return its numbers in the golden layout."""
    import torch

    from . import config as C
    from .store import Store
    from .train import ExecOptions, train_runs

    cfgs = configs()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # kernels may split sums differently on more threads
    try:
        with tempfile.TemporaryDirectory(prefix="kd-canary-") as tmp:
            store = Store(store_root or tmp)
            options = ExecOptions(device="cpu")
            for group in (NO_TEACHER, FROM_TEACHER):
                log(f"canary: training {', '.join(group)}")
                train_runs([cfgs[n] for n in group], store, options)
            runs = {name: _numbers(store, C.run_id(cfg)) for name, cfg in cfgs.items()}
    finally:
        torch.set_num_threads(threads)
    return {"platform": platform_key(), "runs": runs}


def _numbers(store, rid: str) -> dict:
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
    }


def _test_images(store, rid: str) -> int:
    import torch

    from .store import TEST_LOGITS

    saved = torch.load(store.run_file(rid, TEST_LOGITS), map_location="cpu", weights_only=True)
    return int(saved["labels"].numel())


def load_golden(path: Path = GOLDEN_FILE) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def write_golden(numbers: dict, path: Path = GOLDEN_FILE) -> Path:
    from .store import atomic_write_bytes

    atomic_write_bytes(Path(path), (json.dumps(numbers, indent=1, sort_keys=True) + "\n").encode())
    return Path(path)


def compare(golden: dict, tonight: dict) -> tuple[bool, list[str]]:
    """(exact?, differences): each difference names the run, the quantity and both values.

    Exact when the platforms match; otherwise losses within CROSS_PLATFORM's relative tolerance,
    accuracies within one test image, and the weights' digest is not compared."""
    exact = golden.get("platform") == tonight.get("platform")
    found = []
    for name in sorted(set(golden["runs"]) | set(tonight["runs"])):
        g, t = golden["runs"].get(name), tonight["runs"].get(name)
        if g is None or t is None:
            found.append(f"canary {name}: {'not in the golden file' if g is None else 'missing tonight'}")
            continue
        if g.get("id") != t.get("id"):
            found.append(f"canary {name}: run id {g.get('id')} -> {t.get('id')} (its config changed)")
        for key in sorted(set(g) | set(t)):
            if key == "id" or (key == "weights_digest" and not exact):
                continue
            a, b = g.get(key), t.get(key)
            if not _same(key, a, b, exact, g.get("test_images") or 1):
                found.append(f"canary {name}: {key} golden {_show(a)}, tonight {_show(b)}")
    return exact, found


def _same(key: str, a, b, exact: bool, test_images: int) -> bool:
    if exact or a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, list) or isinstance(b, list):
        return (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
                and all(_same(key, x, y, exact, test_images) for x, y in zip(a, b)))
    if "top" in key:
        return abs(a - b) <= CROSS_PLATFORM["top1_images"] * 100.0 / test_images + 1e-9
    if key == "test_images":
        return a == b
    return math.isclose(a, b, rel_tol=CROSS_PLATFORM["loss_rtol"], abs_tol=CROSS_PLATFORM["loss_atol"])


def _show(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)
    return str(v)
