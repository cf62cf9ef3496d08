"""Train one run: a resolved config in, a result in the store out, resumable at every epoch.

The loop is the papers' loop (SGD, per-epoch learning rate, frozen teacher in eval mode);
what it adds is bookkeeping: a checkpoint after every epoch, written atomically; per-epoch
metrics; the last and the best epoch both recorded; and a result with provenance.

Resuming is exact: shuffling and augmentation are functions of (seed, epoch) (see pipeline.py),
the learning rate and any scheduled loss option (recipe.loss_schedule) are functions of the
epoch, and the checkpoint holds the model, the optimizer and the torch random states (dropout). A run killed at any moment and started again ends with
the same weights, bit for bit, as a run that was never interrupted (on the CPU).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import platform
import socket
import subprocess
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch

from . import accel as A
from . import config as C
from . import terms as T
from .accel import Accel
from .data import get_spec, load_arrays, load_folder, make_transforms, synthetic_arrays
from .errors import BadInput
from .distillers import is_distiller, make_distiller
from .losses import make_loss
from .init_schemes import apply_init_scheme
from .models import build_model
from .models.weights import load_file
from .pipeline import Augmentation, LoaderPipeline, TensorPipeline, batch_indices, derive_seed
from .store import Store, WriteRefused


class RunFailed(Exception):
    """The run cannot go on (non-finite loss, missing teacher): recorded as status failed."""


@dataclass
class ExecOptions:
    """How a run is executed. None of this is part of the run id; all of it is recorded."""
    device: str = "cpu"
    num_workers: int = 4          # DataLoader workers for image-folder datasets
    accel: Accel = field(default_factory=Accel)  # accelerations and determinism (accel.py)
    on_epoch: Callable[[dict], None] | None = field(default=None, repr=False)  # progress hook
    tensorboard: bool = False     # also write each epoch's scalars as TensorBoard events (tboard.py)
    # called every ``step_every`` steps inside an epoch (more often in a short epoch: about 8 times
    # at least) with {runs, epoch, epochs, step, steps, images}; host-side counts only, so no device
    # synchronisation is added
    on_step: Callable[[dict], None] | None = field(default=None, repr=False)
    step_every: int = 20

    def record(self) -> dict:
        """What ran: the flags as they applied on this device."""
        return {"device": self.device, "num_workers": self.num_workers,
                **self.accel.resolved(torch.device(self.device)).record()}


# ---------------------------------------------------------------- data


def array_augmentation(dataset: str, augment: str) -> Augmentation | None:
    """The tensor pipeline's equivalent of the dataset's torchvision train transform, read off
    that transform itself so that the two can never disagree. None: not expressible as
    crop+flip (use the DataLoader pipeline)."""
    from torchvision import transforms as T

    padding, flip, reflect = 0, False, False
    for t in make_transforms(dataset, "train", augment).transforms:
        if isinstance(t, T.RandomCrop):
            if t.padding_mode not in ("constant", "reflect") or t.fill not in (0, None) or t.pad_if_needed:
                return None
            reflect = t.padding_mode == "reflect"
            pad = t.padding if isinstance(t.padding, int) else None
            if pad is None and len(set(t.padding)) == 1:
                pad = t.padding[0]
            if pad is None:
                return None
            padding = pad
        elif isinstance(t, T.RandomHorizontalFlip):
            if t.p != 0.5:
                return None
            flip = True
        elif not isinstance(t, (T.ToTensor, T.Normalize)):
            return None
    return Augmentation(padding=padding, flip=flip, reflect=reflect)


def normalization(cfg: dict) -> tuple[list[float], list[float]]:
    spec = get_spec(cfg["dataset"])
    norm = cfg["data"]["normalize"]
    return (norm["mean"], norm["std"]) if norm else (list(spec.mean), list(spec.std))


def build_pipeline(cfg: dict, options: ExecOptions):
    spec = get_spec(cfg["dataset"])
    recipe, data = cfg["recipe"], cfg["data"]
    mean, std = normalization(cfg)
    common = dict(batch_size=recipe["batch_size"], eval_batch_size=recipe["eval_batch_size"],
                  drop_last=recipe["drop_last"], steps_per_epoch=recipe["steps_per_epoch"],
                  device=options.device)
    if data["source"] == "synthetic":
        syn = data["synthetic"]
        kw = dict(seed=syn["seed"], image_size=syn["image_size"])
        train = synthetic_arrays(cfg["dataset"], "train", per_class=syn["per_class"], **kw)
        test = synthetic_arrays(cfg["dataset"], "test", per_class=syn["test_per_class"], **kw)
        # A stand-in gets the small-image augmentation of its own size (crop pad 1/8, flip).
        aug = Augmentation(padding=train[0].shape[1] // 8, flip=True)
        return TensorPipeline(train, test, mean, std, aug, **common)
    root = data["root"]
    if spec.kind == "array":
        aug = array_augmentation(cfg["dataset"], data["augment"])
        if aug is not None:
            train = load_arrays(cfg["dataset"], "train", root)
            test = load_arrays(cfg["dataset"], "test", root)
            return TensorPipeline(train, test, mean, std, aug, **common)
        raise BadInput("config", "data.augment",
                       f"augmentation {data['augment']!r} is not a crop+flip; not supported for {cfg['dataset']}")
    sets = [load_folder(cfg["dataset"], split, root, make_transforms(cfg["dataset"], tsplit, data["augment"], mean, std))
            for split, tsplit in (("train", "train"), ("test", "test"), ("train", "test"))]
    return LoaderPipeline(*sets, num_workers=options.num_workers, **common)


# ---------------------------------------------------------------- models


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_teacher(cfg: dict, store: Store, device) -> torch.nn.Module | None:
    """The frozen teacher, in eval mode: a finished run of the store, or a checkpoint file."""
    teacher = cfg["teacher"]
    if teacher is None:
        return None
    num_classes = get_spec(cfg["dataset"]).num_classes
    if "run" in teacher:
        tid = teacher["run"]
        if not store.is_done(tid):
            raise RunFailed(f"teacher run {tid} is not finished in {store.root}")
        tcfg = store.config(tid)
        if tcfg["dataset"] != cfg["dataset"]:
            raise RunFailed(f"teacher run {tid} was trained on {tcfg['dataset']}, not {cfg['dataset']}")
        model = build_model(tcfg["model"], num_classes)
        state = torch.load(store.run_dir(tid) / "model.pt", map_location="cpu", weights_only=True)
    elif "torchvision" in teacher:  # torchvision's published weights, in torch.hub's cache
        from .hub import local_file

        try:
            path = local_file(teacher)
        except ValueError as err:
            raise RunFailed(str(err)) from None
        model = build_model(teacher["model"], num_classes)
        state = _state_dict_of(torch.load(path, map_location="cpu", weights_only=True))
    else:
        path = teacher["checkpoint"]
        if not Path(path).is_file():
            raise RunFailed(f"teacher checkpoint {path} does not exist")
        if sha256_of(path) != teacher["sha256"]:
            raise RunFailed(f"teacher checkpoint {path} does not match its sha256 {teacher['sha256']}")
        model = build_model(teacher["model"], num_classes)
        state = _state_dict_of(load_file(path))  # RepDistiller's *_last.pth files hold an argparse Namespace
    model.load_state_dict(state)  # strict: a teacher must match its architecture exactly
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _state_dict_of(obj) -> dict:
    """The state dict inside a checkpoint file in the layouts people have on disk
    (plain, or under 'state_dict' / 'model' as RepDistiller saves them), without 'module.'."""
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    return {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def make_optimizer(model: torch.nn.Module, recipe: dict, accel: Accel = Accel()) -> torch.optim.SGD:
    opt = recipe["optimizer"]
    if opt["wd_on_bn_bias"]:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    else:
        # The KL-MSE code: no weight decay on BN parameters and biases (all 1-d tensors).
        decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
        no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
        groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=opt["lr"], momentum=opt["momentum"], nesterov=opt["nesterov"],
                           weight_decay=opt["weight_decay"], **A.sgd_flags(accel))


# ---------------------------------------------------------------- checkpoints


CHECKPOINT, PREVIOUS = "checkpoint.pt", "checkpoint.prev.pt"


def save_checkpoint(store: Store, run_id: str, state: dict) -> None:
    """Atomically replace the checkpoint, keeping the one before as a fall-back (fenced: both
    renames happen under the run's lock, only while this writer holds the lease)."""
    store.write_run_file(run_id, CHECKPOINT, _tensor_bytes(state), keep_previous=PREVIOUS)


def load_checkpoint(run_dir: Path, run_id: str) -> tuple[dict | None, list[str]]:
    """The newest readable checkpoint of this run and notes on any that were unreadable."""
    notes = []
    for name in (CHECKPOINT, PREVIOUS):
        path = run_dir / name
        if not path.exists():
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or state.get("run_id") != run_id:
                raise ValueError("not a checkpoint of this run")
            return state, notes
        except Exception as err:  # truncated zip, bad pickle, wrong run: fall back, don't crash
            notes.append(f"{name} unreadable ({type(err).__name__}: {err}); falling back")
    return None, notes


# ---------------------------------------------------------------- evaluation


@torch.no_grad()
def recalibrate_bn(model: torch.nn.Module, batches, accel: Accel = Accel()) -> None:
    """Precise BN: every BatchNorm's running mean/var becomes the plain average of its batch
    statistics over ``batches`` (train mode, momentum None), as torch's cumulative average."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    was_training, momenta = model.training, [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for batch in batches:
        model(A.prepare_input(batch[0], accel))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)


@torch.no_grad()
def evaluate(model, batches) -> dict:
    """top-1 / top-5 (%) and the logits, accumulated on the device (one sync at the end)."""
    model.eval()
    logits, labels = [], []
    for x, y in batches:
        logits.append(model(x).float())
        labels.append(y)
    z, y = torch.cat(logits), torch.cat(labels)
    k = min(5, z.shape[1])
    top = z.topk(k, dim=1).indices
    top1 = (top[:, 0] == y).float().mean().item() * 100
    top5 = (top == y[:, None]).any(dim=1).float().mean().item() * 100
    return {"top1": top1, "top5": top5, "logits": z, "labels": y}


# ---------------------------------------------------------------- provenance


@lru_cache(maxsize=1)
def code_revision() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (rev + ("+dirty" if dirty else "")) if rev else "unknown"


def provenance(device) -> dict:
    import torchvision

    dev = torch.device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    return {"code_revision": code_revision(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if dev.type == "cuda" else None,
            "device": str(dev), "device_name": name, "python": platform.python_version(),
            "host": socket.gethostname(), "threads": torch.get_num_threads()}


# ---------------------------------------------------------------- the runs


class StopRun(Exception):
    """Raised by a progress hook to drop one run from training (e.g. its lease was lost)."""


def fuse_key(cfg: dict) -> str:
    """Runs with the same key see the same batches in the same order and the same teacher, so
    training them in one loop (one data stream, one teacher forward per batch) is the same
    computation as training them apart."""
    ident = C.identity(cfg)
    return C.canonical_json({k: ident[k] for k in ("dataset", "data", "recipe", "seed", "teacher")})


def needs_features(cfg: dict) -> bool:
    """Whether the run's loss is a feature-based method (it needs the networks' extract())."""
    return is_distiller(cfg["loss"]["name"])


# The loss of each of the first steps of the first epoch is kept in that epoch's metrics: a change
# to a loss or to the data shows there at once, before it is averaged away.
FIRST_STEPS_RECORDED = 8


class Student:
    """One run's training state: model, optimizer, loss, history, checkpoints.

    A feature-based run (benchmark.distillers) also has a ``distiller``: its adapters are built
    from one probe forward of both networks, trained by the same optimizer, saved in the same
    checkpoint. ``data`` and ``teacher`` are needed only then."""

    def __init__(self, cfg: dict, store: Store, device: torch.device, accel: Accel = Accel(), teacher=None,
                 data=None):
        self.cfg, self.store, self.device, self.accel = cfg, store, device, accel
        self.rid = C.run_id(cfg)
        self.run_dir = store.run_dir(self.rid)
        self.recipe, self.seed = cfg["recipe"], cfg["seed"]
        init = cfg["init"]
        if init and init["sha256"] and sha256_of(init["weights"]) != init["sha256"]:
            raise RunFailed(f"init weights {init['weights']} do not match their sha256")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed("init", self.seed))
            self.model = build_model(cfg["model"], get_spec(cfg["dataset"]).num_classes,
                                     weights=init["weights"] if init else None)
            # After the network's own init, as the ATS code applies weights_init to a built student.
            self.model = apply_init_scheme(self.model, self.recipe.get("init_scheme", "torch")).to(device)
        self.forward = A.prepare_model(self.model, accel)
        self.distiller = None
        if needs_features(cfg):
            self.distiller = self._make_distiller(cfg, teacher, data, device)
            self.loss_fn = None
            # Adapters after the student's parameters, in one SGD optimizer (as RepDistiller's
            # trainable_list): the same lr, momentum and weight decay.
            self.optimizer = make_optimizer(torch.nn.ModuleList([self.model, self.distiller]), self.recipe, accel)
        else:
            self.loss_fn = make_loss(**cfg["loss"])
            self.optimizer = make_optimizer(self.model, self.recipe, accel)
        # Pre-training stages (AB, FT, FSP): flattened to (stage, epoch) pairs, run before epoch 0.
        self.stages = self.distiller.init_stages(self.model) if self.distiller is not None else []
        self.init_schedule = [(k, e) for k, st in enumerate(self.stages) for e in range(st.epochs)]
        self.init_done, self.init_history, self.init_optimizer_state = 0, [], None
        state, self.notes = load_checkpoint(self.run_dir, self.rid)
        self.history: list[dict] = []
        self.next_epoch = 0
        if state is not None:
            self.model.load_state_dict(state["model"])
            if self.distiller is not None:
                self.distiller.load_state_dict(state["distiller"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.rng_cpu, self.rng_cuda = state["rng_cpu"], state.get("rng_cuda")
            self.history, self.next_epoch = list(state["history"]), state["epoch"] + 1
            self.init_done = state.get("init_done", 0)
            self.init_history = list(state.get("init_history", []))
            self.init_optimizer_state = state.get("init_optimizer")
        else:
            # The run's own random stream (dropout), kept apart from every other run's, so that
            # a run draws the same numbers alone or fused with others.
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(derive_seed("train", self.seed))
                self.rng_cpu = torch.get_rng_state()
                self.rng_cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        self.resumed_from = self.next_epoch or None
        self.resumed_from_init = self.init_done if 0 < self.init_done < len(self.init_schedule) else None
        self.epoch_times: list[float] = []
        self.last_eval = None
        self.step_losses: list[torch.Tensor] = []

    def _make_distiller(self, cfg, teacher, data, device):
        if teacher is None or data is None:
            raise RunFailed(f"loss {cfg['loss']['name']!r} needs the teacher and the data to build its adapters")
        params = {k: v for k, v in cfg["loss"].items() if k != "name"}
        x = data.probe_batch()
        was_training = self.model.training
        self.model.eval()  # the probe must not move the BatchNorm statistics
        with torch.no_grad():
            probe_s, probe_t = self.model.extract(x), teacher.extract(x)
        self.model.train(was_training)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            # Its own seed: the student's initial weights stay those of a CE run of the same seed.
            torch.manual_seed(derive_seed("distiller", self.seed))
            try:
                distiller = make_distiller(cfg["loss"]["name"], probe_s, probe_t,
                                           get_spec(cfg["dataset"]).num_classes,
                                           train_labels=data.train_targets(), **params)
                distiller.attach_teacher(teacher)
            except ValueError as err:
                raise RunFailed(f"loss {cfg['loss']['name']!r}: {err}") from None
        distiller.to(device).train()
        distiller.attach(self.model)
        return distiller

    @property
    def needs_index(self) -> bool:
        return self.distiller is not None and self.distiller.needs_index

    @property
    def init_pending(self) -> bool:
        return self.init_done < len(self.init_schedule)

    def pretrain(self, data, teacher, options: ExecOptions) -> None:
        """The pre-training stages still to run, one checkpoint per epoch (RepDistiller's init():
        SGD at a constant rate, the recipe's momentum and weight decay, on the stage's modules;
        the student in eval mode, the stage's modules in train mode)."""
        opt = None
        while self.init_pending:
            k, e = self.init_schedule[self.init_done]
            stage = self.stages[k]
            if opt is None or e == 0:
                params = list({id(p): p for m in stage.modules for p in m.parameters() if p.requires_grad}.values())
                o = self.recipe["optimizer"]
                opt = torch.optim.SGD(params, lr=stage.lr, momentum=o["momentum"], weight_decay=o["weight_decay"],
                                      **A.sgd_flags(self.accel))
                if e > 0 and self.init_optimizer_state is not None:  # resumed inside this stage
                    opt.load_state_dict(self.init_optimizer_state)
            t0 = time.time()
            loss_sum, seen = torch.zeros((), device=self.device), 0
            meter = T.TermMeter(self.device)
            self.model.eval()
            self.distiller.eval()
            for m in stage.modules:
                m.train()
            for x, y in data.train_batches(self.seed, f"init{k}.{e}"):
                x = A.prepare_input(x, self.accel)
                with torch.no_grad(), A.autocast(self.device, self.accel):
                    ft = teacher.extract(x)
                with self._own_rng():
                    with A.autocast(self.device, self.accel):
                        fs = self.model.extract(x) if stage.needs_student else None
                    with T.recording() as parts:
                        loss = stage.loss(fs, ft, y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    gn = T.grad_norm(params)
                    opt.step()
                loss_sum += loss.detach() * len(y)
                seen += len(y)
                meter.add({"stage": loss, **parts}, loss, len(y), gn)
            train_loss = loss_sum.item() / max(seen, 1)
            terms = meter.summary()
            if not math.isfinite(train_loss):
                raise RunFailed(f"non-finite loss ({train_loss}) in epoch {e + 1} of pre-training stage {stage.name}: "
                                + T.nonfinite_reason(terms))
            terms.pop("first_nonfinite")
            self.init_history.append({"stage": stage.name, "epoch": e + 1, "lr": stage.lr,
                                      "train_loss": train_loss, **terms, "time_s": time.time() - t0})
            self.init_done += 1
            last_of_stage = e == stage.epochs - 1
            if last_of_stage:
                opt.zero_grad(set_to_none=True)  # no stale gradient reaches the main optimizer
            self.init_optimizer_state = None if last_of_stage else opt.state_dict()
            save_checkpoint(self.store, self.rid, self._state(epoch=-1))
            self.write_metrics(options)
            if options.on_epoch:
                options.on_epoch({"run": self.rid, "stage": stage.name, "epoch": e + 1, "epochs": stage.epochs,
                                  "train_loss": train_loss, "test_top1": None})

    @contextlib.contextmanager
    def _own_rng(self):
        """The run's own random stream (dropout) around a step; see __init__."""
        cuda = self.device.type == "cuda"
        with torch.random.fork_rng(devices=[self.device] if cuda else []):
            torch.set_rng_state(self.rng_cpu)
            if cuda and self.rng_cuda is not None:
                torch.cuda.set_rng_state(self.rng_cuda, self.device)
            yield
            self.rng_cpu = torch.get_rng_state()
            self.rng_cuda = torch.cuda.get_rng_state(self.device) if cuda else None

    def _state(self, epoch: int) -> dict:
        state = {"run_id": self.rid, "epoch": epoch, "model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "rng_cpu": self.rng_cpu, "rng_cuda": self.rng_cuda,
                 "history": self.history}
        if self.distiller is not None:
            state["distiller"] = self.distiller.state_dict()  # adapters, CRD's banks
        if self.stages:
            state.update(init_done=self.init_done, init_history=self.init_history,
                         init_optimizer=self.init_optimizer_state)
        return state

    def write_metrics(self, options: ExecOptions) -> None:
        """metrics.jsonl: the pre-training stages' epochs (with ``stage``), then the main epochs;
        and, with ``options.tensorboard``, the same as TensorBoard events."""
        self.store.append_metrics(self.rid, [*self.init_history, *self.history])
        if options.tensorboard:
            from .tboard import export_run

            export_run(self.store, self.rid)

    def begin_epoch(self, epoch: int) -> None:
        self.lr = C.lr_at(self.recipe, epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        # A loss schedule (recipe.loss_schedule) sets its options from the epoch alone, so a resumed
        # run trains each epoch with the same loss as an uninterrupted one.
        self.scheduled = C.loss_params_at(self.recipe, epoch)
        if self.scheduled:
            self.loss_fn = make_loss(**{**self.cfg["loss"], **self.scheduled})
        self.model.train()
        if self.distiller is not None:
            self.distiller.train()
            self.distiller.start_epoch(epoch, self.recipe["epochs"])
        self.loss_sum = torch.zeros((), device=self.device)
        self.meter = T.TermMeter(self.device)
        self.correct = torch.zeros((), device=self.device, dtype=torch.long)
        self.seen = 0
        self.record_steps, self.step_losses = epoch == 0, []
        self.t0 = time.time()

    def step(self, x, y, z_t, ft=None, index=None) -> None:
        """One SGD step. ``ft``: the teacher's extract() of x (feature runs), ``index``: the
        samples' training-set indices (CRD)."""
        with self._own_rng():
            with A.autocast(self.device, self.accel):
                if self.distiller is not None:
                    fs = self.model.extract(x)
                    z_s = fs["logits"]
                else:
                    z_s = self.forward(x)
            # the losses compute in float32 under any autocast; their terms are recorded aside
            with T.recording() as parts:
                loss = self.distiller(fs, ft, y, index) if self.distiller is not None else self.loss_fn(z_s, z_t, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            gn = T.grad_norm(p for g in self.optimizer.param_groups for p in g["params"])
            self.optimizer.step()
        self.loss_sum += loss.detach() * len(y)
        self.meter.add(parts, loss, len(y), gn)
        self.correct += (z_s.detach().argmax(1) == y).sum()
        self.seen += len(y)
        if self.record_steps and len(self.step_losses) < FIRST_STEPS_RECORDED:
            self.step_losses.append(loss.detach())  # read at the epoch's end: no host sync here

    def end_epoch(self, epoch: int, data, options: ExecOptions) -> None:
        train_loss = self.loss_sum.item() / max(self.seen, 1)  # one host sync per epoch
        terms = self.meter.summary()
        if not math.isfinite(train_loss):
            raise RunFailed(f"non-finite training loss ({train_loss}) in epoch {epoch + 1}: " + T.nonfinite_reason(terms))
        terms.pop("first_nonfinite")
        if self.recipe["bn_recalibration"]:
            with self._own_rng():  # dropout draws come from the run's own stream
                recalibrate_bn(self.model, data.train_batches(self.seed, f"bn{epoch}"), self.accel)
        ev = self.last_eval = evaluate(self.model, data.test_batches())
        self.history.append({"epoch": epoch + 1, "lr": self.lr, "train_loss": train_loss, **terms,
                             "train_top1_augmented": self.correct.item() / max(self.seen, 1) * 100,
                             "test_top1": ev["top1"], "test_top5": ev["top5"], "time_s": time.time() - self.t0,
                             **({"loss_params": self.scheduled} if self.scheduled else {})})
        if self.step_losses:  # the golden canary compares these step by step (benchmark/canary.py)
            self.history[-1]["first_steps_loss"] = [float(v) for v in torch.stack(self.step_losses).cpu()]
        save_checkpoint(self.store, self.rid, self._state(epoch))
        self.write_metrics(options)
        self.epoch_times.append(time.time() - self.t0)
        self.next_epoch = epoch + 1
        if options.on_epoch:
            options.on_epoch({"run": self.rid, **self.history[-1], "epochs": self.recipe["epochs"]})

    def finish(self, data, options: ExecOptions, fused_with: int) -> dict:
        ev = self.last_eval or evaluate(self.model, data.test_batches())  # resumed after the last epoch
        self.store.write_run_file(self.rid, "model.pt", _tensor_bytes(self.model.state_dict()))
        # Test logits feed ensembles and analyses (logit sums of ~1e-5 need float32); ImageNet-size
        # ones (50k x 1000) are kept in float16 to stay at 100 MB per run.
        logits = ev["logits"].cpu()
        if logits.numel() > 4_000_000:
            logits = logits.half()
        self.store.write_run_file(self.rid, "test_logits.pt",
                                  _tensor_bytes({"logits": logits, "labels": ev["labels"].cpu()}))
        train_eval = evaluate(self.model, data.train_eval_batches()) if self.recipe["final_train_eval"] else None
        last = self.history[-1]
        best = max(self.history, key=lambda m: (m["test_top1"], m["epoch"]))
        reported = last if self.recipe["report_epoch"] == "last" else best
        return {
            "id": self.rid, "status": "done", "config": self.cfg,
            "metrics": {
                "top1": reported["test_top1"], "top5": reported["test_top5"],
                "reported_epoch": self.recipe["report_epoch"],
                "last": {"epoch": last["epoch"], "top1": last["test_top1"], "top5": last["test_top5"]},
                "best": {"epoch": best["epoch"], "top1": best["test_top1"], "top5": best["test_top5"]},
                "train_loss": last["train_loss"],
                "train_top1": train_eval["top1"] if train_eval else None,
            },
            "weights_digest": state_digest(self.model.state_dict()),
            "epochs_per_s": len(self.epoch_times) / sum(self.epoch_times) if self.epoch_times else None,
            "resumed_from_epoch": self.resumed_from,
            **({"init_stages": {"stages": [{"name": st.name, "epochs": st.epochs, "lr": st.lr} for st in self.stages],
                                "history": self.init_history, "resumed_from_init_epoch": self.resumed_from_init}}
               if self.stages else {}),
            "checkpoint_notes": self.notes,
            "execution": {**options.record(), "fused_with": fused_with},
            "provenance": provenance(self.device),
        }


def _failed(cfg, rid, reason, options) -> dict:
    return {"id": rid, "status": "failed", "reason": reason, "config": cfg, "execution": options.record(),
            "provenance": provenance(options.device)}


def train_runs(cfgs: list[dict], store: Store, options: ExecOptions | None = None) -> dict[str, dict | None]:
    """Train runs that share a fuse_key together: one data stream, one teacher forward per batch.

    Returns run id -> result (None for a run a progress hook dropped with StopRun). Finished runs
    are returned as they are; the others are resumed from their checkpoints and trained in
    lockstep, each joining at its own next epoch."""
    options = options or ExecOptions()
    if len({fuse_key(c) for c in cfgs}) > 1:
        raise ValueError("train_runs: these runs differ in data, recipe, seed or teacher; train them apart")
    results: dict[str, dict | None] = {}
    todo = []
    for cfg in cfgs:
        rid = C.run_id(cfg)
        finished = store.result(rid)
        if finished is not None and finished.get("status") == "done":
            results[rid] = finished
        elif rid not in [C.run_id(c) for c in todo]:
            todo.append(cfg)
    if not todo:
        return results
    cfg0 = todo[0]
    data = build_pipeline(cfg0, options)  # missing dataset files: BadInput before anything is written
    for cfg in todo:
        store.ensure_config(C.run_id(cfg), cfg)
    device = torch.device(options.device)
    accel = options.accel.resolved(device)
    A.configure(device, accel)
    start = time.time()
    students: list[Student] = []
    try:
        teacher = load_teacher(cfg0, store, device)
        teacher_forward = A.prepare_model(teacher, accel) if teacher is not None else None
    except RunFailed as err:
        for cfg in todo:
            results[C.run_id(cfg)] = _failed(cfg, C.run_id(cfg), str(err), options)
        teacher = None
        todo = []
    for cfg in todo:
        try:
            students.append(Student(cfg, store, device, accel, teacher=teacher, data=data))
        except RunFailed as err:
            results[C.run_id(cfg)] = _failed(cfg, C.run_id(cfg), str(err), options)

    def guarded(student, action) -> None:
        """Run ``action``; a failed run (RunFailed) or a dropped one (StopRun) leaves the group."""
        try:
            action()
        except (RunFailed, StopRun, WriteRefused) as err:  # WriteRefused: the lease passed to another
            students.remove(student)
            results[student.rid] = _failed(student.cfg, student.rid, str(err), options) \
                if isinstance(err, RunFailed) else None

    # Pre-training stages run per student (each with its own batches), before the fused loop.
    for s in [s for s in students if s.init_pending]:
        guarded(s, lambda: s.pretrain(data, teacher, options))

    epochs = cfg0["recipe"]["epochs"]
    for epoch in range(min([s.next_epoch for s in students], default=epochs), epochs):
        active = [s for s in students if s.next_epoch == epoch]
        if not active:
            continue
        for s in active:
            s.begin_epoch(epoch)
        # The teacher's features are computed (once per batch) only if some student needs them.
        features = teacher is not None and any(s.distiller is not None for s in active)
        with_index = any(s.needs_index for s in active)
        steps = len(batch_indices(data.num_train, data.batch_size, data.drop_last, data.steps_per_epoch))
        every = max(1, min(options.step_every, steps // 8))
        for i, batch in enumerate(data.train_batches(cfg0["seed"], epoch, with_index=with_index)):
            if options.on_step and i and i % every == 0:
                options.on_step({"runs": [s.rid for s in active], "epoch": epoch + 1, "epochs": epochs,
                                 "step": i, "steps": steps, "images": i * data.batch_size})
            x, y, index = batch if with_index else (*batch, None)
            x = A.prepare_input(x, accel)
            with torch.no_grad(), A.autocast(device, accel):
                ft = teacher.extract(x) if features else None
                z_t = ft["logits"] if features else (teacher_forward(x) if teacher is not None else None)
            for s in active:
                s.step(x, y, z_t, ft, index)
        for s in active:
            guarded(s, lambda: s.end_epoch(epoch, data, options))
    for s in list(students):
        guarded(s, lambda: results.__setitem__(s.rid, s.finish(data, options, fused_with=len(cfgs))))
    elapsed = time.time() - start
    for rid, res in results.items():
        if res is not None and "wall_time_s" not in res:
            res["wall_time_s"] = elapsed / max(1, len(todo))  # the group's time, shared out
            try:
                store.write_result(rid, res)
            except WriteRefused:  # another worker took the run over (and may have finished it)
                results[rid] = None
    return results


def train_run(cfg: dict, store: Store, options: ExecOptions | None = None) -> dict:
    """Train (or resume, or skip) one run; return its result, which is also in the store."""
    result = train_runs([cfg], store, options)[C.run_id(cfg)]
    if result is None:
        raise StopRun(C.run_id(cfg))
    return result


def state_digest(state: dict) -> str:
    """sha256 over the tensors' names and bytes: equal digests mean bit-identical weights."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _tensor_bytes(obj) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()
