"""bench: the engine against the loop these papers were run with, side by side in one process.

One KD step (resnet56 teacher -> resnet20 student, tau 4, SGD) on CIFAR-100-shaped data,
three ways, on the same device, data and models:

- ``reference``: what the papers' code does: a torchvision-style dataset that hands out PIL
  images, RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor + Normalize, a DataLoader,
  one student per process, the teacher forwarded every step;
- ``engine``: the suite's trainer (uint8 data on the device, crop and flip there in batches, no
  per-step host synchronisation) with one student: the trainer's own per-batch step
  (``train.GroupStep``, what ``train_runs`` calls), not a copy of it;
- ``engine_fused4``: the same with four students fused: one data stream and one teacher forward
  per batch for four students.

With ``decode_images``, also the image-folder decode rate of each ``data.decode`` backend (pil,
nvjpeg) side by side (decoderate.py).

``speedup`` = engine images/s / reference images/s; ``fused_speedup`` = per-student images/s
with four fused students / reference images/s. Numbers are measured, never assumed.
"""

from __future__ import annotations

import collections
import os
import tempfile
import time

import torch

from ..engine import config as C
from ..engine.accel import Accel, configure, read_back
from ..engine.data import get_spec, synthetic_arrays
from ..engine.losses import make_loss
from ..engine.models import build_model
from ..engine.pipeline import Augmentation, TensorPipeline
from ..engine.train import GroupStep, Stream, Student, make_optimizer
from ..store.layout import Store


class PILArrayDataset(torch.utils.data.Dataset):
    """What torchvision's CIFAR100 does per item: uint8 HWC array -> PIL image -> transforms."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images.numpy(), labels.tolist(), transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _config(batch_size: int) -> dict:
    return C.resolve({"dataset": "cifar100", "data": {"source": "synthetic"}, "model": "resnet20",
                      "teacher": {"run": "0" * 16}, "loss": {"name": "kd", "tau": 4.0},
                      "recipe": {"epochs": 1, "batch_size": batch_size}})


def _timed(step_fn, batches, warmup: int, steps: int, device) -> float:
    """Seconds for `steps` steps after `warmup` steps, batches drawn as the loop would."""
    it = iter(batches())
    for _ in range(warmup):
        step_fn(*next(it))
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(batches())
            batch = next(it)
        step_fn(*batch)
    _sync(device)
    return time.perf_counter() - t0


def run_bench(device: str = "cpu", steps: int = 20, warmup: int = 3, batch_size: int = 64,
              images: int = 4096, loader_workers: int | None = None, accel: Accel = Accel(), log=None,
              decode_images: int = 0, packing: tuple[int, ...] = (), horizontal_sizes: tuple[int, ...] = ()) -> dict:
    """The three cases; ``accel`` applies to the engine's cases only (the reference is the papers'
    plain loop). ``log(message)`` is told which case is being timed. ``decode_images`` > 0: also the
    image-folder decode rate per backend on that many generated JPEGs (decoderate.py), as ``decode``.
    ``packing``: process counts K for the packing cases (packbench.py; under ``packing`` in the result).
    ``horizontal_sizes``: also N students apart and batched for each N (bench_horizontal.py)."""
    log = log or (lambda _message: None)
    from torchvision import transforms as T

    dev = torch.device(device)
    accel = accel.resolved(dev)
    configure(accel)  # for both loops (RepDistiller's own loop sets cudnn.benchmark too)
    torch.manual_seed(0)
    per_class = max(1, images // 100)
    cifar100 = get_spec("cifar100")  # the normalisation the recipes train with
    train = synthetic_arrays("cifar100", "train", per_class=per_class)
    test = synthetic_arrays("cifar100", "test", per_class=1)
    teacher = build_model("resnet56", 100).to(dev).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    cfg = _config(batch_size)
    loss_fn = make_loss(**cfg["loss"])
    cases = []

    # -- reference: PIL transforms, DataLoader, one student, teacher forwarded per step
    workers = loader_workers if loader_workers is not None else min(4, os.cpu_count() or 1)
    transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize(cifar100.mean, cifar100.std)])
    loader = torch.utils.data.DataLoader(PILArrayDataset(*train, transform), batch_size=batch_size, shuffle=True,
                                         num_workers=workers, pin_memory=dev.type == "cuda", drop_last=True,
                                         persistent_workers=workers > 0)
    student = build_model("resnet20", 100).to(dev)
    opt = make_optimizer(student, cfg["recipe"])

    def reference_step(x, y):
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        with torch.no_grad():
            z_t = teacher(x)
        loss = loss_fn(student(x), z_t, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()  # the papers' loops log the loss every step: a host synchronisation

    log(f"timing the reference loop (PIL transforms, DataLoader with {workers} workers, 1 student): "
        f"{warmup} + {steps} steps")
    seconds = _timed(reference_step, lambda: loader, warmup, steps, dev)
    cases.append({"name": "reference", "students": 1, "steps": steps, "seconds": seconds,
                  "images_per_s": steps * batch_size / seconds, "loader_workers": workers})

    # -- the engine, one and four students
    pipe = TensorPipeline(train, test, cifar100.mean, cifar100.std, Augmentation(4, True), batch_size=batch_size,
                          drop_last=True, device=dev)
    # One stream (bench's data, its teacher) that every run reads, whatever its seed.
    stream = Stream(cfg, pipe, teacher, accel)
    step = GroupStep(dev, accel, collections.defaultdict(lambda: stream))
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(tmp)
        for k in (1, 4):
            group = []
            for i in range(k):
                c = dict(cfg, seed=i)  # distinct ids (fresh run folders); the step is the same
                group.append(Student(c, store, dev, accel))
            for s in group:
                s.begin_epoch(0)

            def engine_step(x, y, group=group):  # the trainer's own per-batch step (train.GroupStep)
                step([(stream, (x, y))], group)

            epoch = [0]

            def batches(epoch=epoch):
                epoch[0] += 1
                return pipe.train_batches(0, epoch[0])

            log(f"timing the engine with {k} student{'s' if k > 1 else ''}: {warmup} + {steps} steps")
            seconds = _timed(engine_step, batches, warmup, steps, dev)
            cases.append({"name": "engine" if k == 1 else f"engine_fused{k}", "students": k, "steps": steps,
                          "seconds": seconds, "images_per_s": steps * batch_size / seconds,
                          "per_student_images_per_s": steps * batch_size * k / seconds})
        fusion = []
        if horizontal_sizes:
            from .bench_horizontal import horizontal_cases

            fusion = horizontal_cases(_timed, horizontal_sizes, cfg, store, dev, accel, pipe, step, stream, warmup,
                                      steps, log)
    decode = None
    if decode_images:
        from .decoderate import decode_rates

        log(f"timing the image-folder decode per backend (pil, nvjpeg) on {decode_images} generated JPEGs")
        decode = decode_rates(device, images=decode_images)
    ref = cases[0]["images_per_s"]
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    extra = {}
    if packing:
        from .packbench import measure

        extra["packing"] = measure(device, packing, steps, warmup, batch_size, log=log)
    return {**extra, "device": name, "batch_size": batch_size, "teacher": "resnet56", "student": "resnet20",
            "cases": cases, "horizontal": fusion, "speedup": cases[1]["images_per_s"] / ref,
            "fused_speedup": cases[2]["per_student_images_per_s"] / ref,
            "accel": accel.record(), "read_back": read_back(dev, accel, teacher), "torch": torch.__version__,
            "device_kind": dev.type, **({"decode": decode} if decode else {})}
