"""Train one run: a resolved config in, a result in the store out, resumable at every epoch.

The loop is the papers' loop (SGD, per-epoch learning rate, frozen teacher in eval mode);
what it adds is bookkeeping: a checkpoint after every epoch, written atomically; per-epoch
metrics; the last and the best epoch both recorded; and a result with provenance.

Resuming is exact: shuffling and augmentation are functions of (seed, epoch) (see pipeline.py),
the learning rate and any scheduled loss option (recipe.loss_schedule) are functions of the
epoch, and the checkpoint holds the model, the optimizer and the torch random states (dropout). A run killed at any moment and started again ends with
the same weights, bit for bit, as a run that was never interrupted (on the CPU).

Here: ``TrainingRun`` (one run's state and its epoch: ``begin_epoch``, ``step``, ``end_epoch``,
``finish``) and ``train_runs``, the loop over epochs and batches that drives several fused runs.
Beside it: execution.py (``ExecOptions``), assembly.py (a config's data pipeline, the network
``build_student`` and the run's method ``build_method``: a logit loss, or a distiller whose
adapters a probe forward shapes), evaluation.py (evaluate, precise BN), provenance.py,
run_result.py (the result records), teachers.py (loading the frozen teacher), optimizers.py,
pretraining.py (AB/FT/FSP/IE-AT stages before epoch 0), checkpoints.py, run_rng.py (each run's
own random stream), train_errors.py (RunFailed, StopRun).
"""

from __future__ import annotations

import math
import time

import torch

from ..store.layout import METRICS, MODEL, TEST_LOGITS, Store, WriteRefused
from . import accel, analysis, config, horizontal, methods, revisions, schedules, terms
from .accel import Accel
from .assembly import build_method, build_pipeline, build_student
from .checkpoints import load_checkpoint, save_checkpoint, tensor_bytes
from .evaluation import evaluate, recalibrate_bn
from .execution import ExecOptions
from .optimizers import make_optimizer
from .pipeline import TensorPipeline, batch_indices
from .pretraining import PretrainProgress, pretrain
from .run_result import done_result, failed_result
from .run_rng import RunRandom
from .teachers import load_teacher
from .train_errors import RunFailed, StopRun

# ---------------------------------------------------------------- the runs


def fuse_key(cfg: dict) -> str:
    """Runs with the same key see the same batches in the same order and the same teacher, so
    training them in one loop (one data stream, one teacher forward per batch) is the same
    computation as training them apart."""
    ident = config.identity(cfg)
    return config.canonical_json({k: ident.get(k) for k in ("dataset", "data", "recipe", "seed", "teacher")})


def lane_key(cfg: dict) -> str:
    """Runs with the same lane key may train in one loop under ``--horizontal on``: the same data
    and recipe (so the same steps per epoch and the same optimizer settings), whatever their seeds
    and teachers; each (seed, teacher) is a stream of its own (its own batches, its own teacher
    forward), and a lane of one architecture stacks the rows of all its streams."""
    ident = config.identity(cfg)
    return config.canonical_json({k: ident.get(k) for k in ("dataset", "data", "recipe")})


class Stream:
    """The batches and the teacher of the runs that share a fuse_key: one data order (the seed)
    and one teacher forward per batch."""

    def __init__(self, cfg: dict, data, teacher, accel_opts: Accel):
        self.seed, self.data, self.teacher = cfg["seed"], data, teacher
        self.forward = accel.prepare_model(teacher, accel_opts) if teacher is not None else None

    def batches(self, epoch: int, with_index: bool):
        """The stream's batches of ``epoch``: (x, y) or, ``with_index``, (x, y, index)."""
        return self.data.train_batches(self.seed, epoch, with_index=with_index)

    def prepare(self, batch: tuple, features: bool, device, accel_opts: Accel) -> tuple:
        """(x, y, index, z_t, ft) of one batch: ``ft`` the teacher's extract() when ``features``."""
        x, y, index = batch if len(batch) == 3 else (*batch, None)
        x = accel.prepare_input(x, accel_opts)
        with torch.no_grad(), accel.autocast(device, accel_opts):
            ft = self.teacher.extract(x) if features and self.teacher is not None else None
            z_t = ft["logits"] if ft is not None else (self.forward(x) if self.teacher is not None else None)
        return x, y, index, z_t, ft


def step_lane(lane, inputs: list, progress: float) -> None:
    """One step of a lane whose runs read ``inputs`` (each run's stream's (x, y, index, z_t, ft)):
    one batch for all when they share a stream, else each row its own."""
    if all(b is inputs[0] for b in inputs):
        x, y, index, z_t, ft = inputs[0]
        lane.step(x, y, z_t, progress=progress, ft=ft, index=index)
    else:
        x, y, index, z_t, ft = zip(*inputs)
        lane.step(torch.stack(x), y, z_t, per_run=True, progress=progress, ft=ft, index=index)


class GroupStep:
    """One batch of a fused group's epoch: each live stream's batch prepared (the teacher forwarded
    once per stream, its features only when ``features``: some run's method reads taps), then every
    lane (horizontal.py) and every run not in a lane stepped on its stream's batch. What
    ``train_runs`` calls per batch, and what ``bench`` times (it builds its own GroupStep, so the
    step it measures is this one, not a copy)."""

    def __init__(self, device: torch.device, accel_opts: Accel, stream_of: dict):
        self.device, self.accel_opts, self.stream_of = device, accel_opts, stream_of  # run id -> Stream

    def __call__(self, batches: list[tuple], runs: list, lanes: list = (), features: bool = False,
                 progress: float = 0.0) -> None:
        """``batches``: (stream, its raw batch) for each live stream."""
        of = {id(st): st.prepare(b, features, self.device, self.accel_opts) for st, b in batches}
        for lane in lanes:
            step_lane(lane, [of[id(self.stream_of[r.run_id])] for r in lane.runs], progress)
        for s in runs:
            if not s.in_lane:
                x, y, index, z_t, ft = of[id(self.stream_of[s.run_id])]
                s.step(x, y, z_t, ft, index, progress=progress)


# The loss of each of the first steps of the first epoch is kept in that epoch's metrics: a change
# to a loss or to the data shows there at once, before it is averaged away.
FIRST_STEPS_RECORDED = 8


class TrainingRun:
    """One run's training state (a student, or a teacher trained from scratch): its network, its
    method, its optimizer, its random stream and its history; checkpointed every epoch.

    The parts live apart: the network comes from ``build_student``, the method from
    ``build_method`` (a method's adapters, if it has any, are trained by the same optimizer and
    saved in the same checkpoint), the optimizer from optimizers.py, the
    pre-training stages from pretraining.py, the checkpoint from checkpoints.py, the random stream
    from run_rng.py. ``data`` and ``teacher`` are needed only by methods with taps. The epoch itself is
    ``begin_epoch`` / ``step`` per batch / ``end_epoch``, driven by ``train_runs``."""

    def __init__(self, cfg: dict, store: Store, device: torch.device, accel_opts: Accel = Accel(), teacher=None,
                 data=None):
        self.cfg, self.store, self.device, self.accel_opts = cfg, store, device, accel_opts
        self.teacher, self.teacher_test = teacher, None  # the teacher's test logits: epoch_sharpness_gap
        self.run_id = config.run_id(cfg)
        self.recipe, self.seed = cfg["recipe"], cfg["seed"]
        self.model = build_student(cfg, device)
        self.forward = accel.prepare_model(self.model, accel_opts)
        self.method = build_method(cfg, self.model, teacher, data, device)
        adapters = self.method.adapters
        # Adapters after the student's parameters, in one SGD optimizer (as RepDistiller's
        # trainable_list): the same lr, momentum and weight decay.
        self.optimizer = make_optimizer(self.model if adapters is None else
                                        torch.nn.ModuleList([self.model, adapters]), self.recipe, accel_opts)
        self.pretraining = PretrainProgress(self.method.pretrain_stages(self.model))
        self.in_lane = False  # set each epoch by horizontal.form
        self.epoch = 0
        self.history: list[dict] = []
        self.next_epoch = 0
        # The numerics revisions of the parts this run uses (benchmark/engine/revisions.py; not in its id):
        # a resumed run keeps, per part, the lowest one it was trained under.
        self.revisions = revisions.revisions_for(cfg)
        state, self.notes = load_checkpoint(store, self.run_id)
        if state is not None:
            refused = numerics_mismatch(state, accel_opts)
            if refused:
                raise RunFailed(refused)
            self.restore(state)
        else:
            self.rng = RunRandom.fresh(self.seed, device)
        self.resumed_from = self.next_epoch or None
        # Lines of metrics.jsonl this run wrote; None: a file left by an earlier start (maybe with
        # a torn last line, maybe with epochs the checkpoint lost), rewritten at the first write.
        self.metrics_lines = None if store.run_file(self.run_id, METRICS).exists() else 0
        self.epoch_times: list[float] = []
        self.last_eval = None
        self.horizontal: dict | None = None  # its lane (horizontal.py), as first formed in this process
        self.step_losses: list[torch.Tensor] = []

    # ------------------------------------------------------------ checkpoint

    def checkpoint_state(self, epoch: int) -> dict:
        """Everything a resume needs: weights, optimizer, random stream, history (``epoch`` -1:
        inside the pre-training stages)."""
        state = {"run_id": self.run_id, "epoch": epoch, "model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "rng_cpu": self.rng.cpu, "rng_cuda": self.rng.cuda,
                 "history": self.history, "revisions": self.revisions, "numerics": self.accel_opts.label()}
        if self.method.adapters is not None:
            state["distiller"] = self.method.adapters.state_dict()  # adapters, CRD's banks
        state.update(self.pretraining.state_dict())
        return state

    def restore(self, state: dict) -> None:
        """Continue from a checkpoint: the state after its epoch, the next epoch to run."""
        self.model.load_state_dict(state["model"])
        if self.method.adapters is not None:
            self.method.adapters.load_state_dict(state["distiller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng = RunRandom(self.device, state["rng_cpu"], state.get("rng_cuda"))
        self.history, self.next_epoch = list(state["history"]), state["epoch"] + 1
        self.pretraining.load_state_dict(state)
        # a checkpoint from before revisions were recorded holds none: revision 1 of every part
        self.revisions = revisions.lowest(state.get("revisions", {}), self.revisions)

    def save_checkpoint(self, epoch: int) -> None:
        save_checkpoint(self.store, self.run_id, self.checkpoint_state(epoch))

    def write_metrics(self, options: ExecOptions) -> None:
        """metrics.jsonl: the pre-training stages' epochs (with ``stage``), then the main epochs;
        and, with ``options.tensorboard``, the same as TensorBoard events. The lines not yet
        written are appended; the first write after a resume rewrites the file whole."""
        lines = [*self.pretraining.history, *self.history]
        if self.metrics_lines is None:
            self.store.rewrite_metrics(self.run_id, lines)
        else:
            self.store.append_metrics(self.run_id, lines[self.metrics_lines:])
        self.metrics_lines = len(lines)
        if options.tensorboard:
            from .tboard import export_run

            export_run(self.store, self.run_id)

    # ------------------------------------------------------------ the epoch

    @property
    def needs_index(self) -> bool:
        return self.method.needs_index

    def pretrain(self, data, teacher, options: ExecOptions) -> None:
        """The pre-training stages still to run (pretraining.py)."""
        pretrain(self, data, teacher, options)

    def begin_epoch(self, epoch: int) -> None:
        self.lr = schedules.lr_at(self.recipe, epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        # A loss schedule (recipe.loss_schedule) sets its options from the epoch alone, so a resumed
        # run trains each epoch with the same loss as an uninterrupted one.
        self.scheduled = schedules.loss_params_at(self.recipe, epoch)
        if self.scheduled:  # only methods without taps are scheduled (config.py): rebuilt from the options
            loss = self.cfg["loss"]
            self.method = methods.build(loss["name"], {**{k: v for k, v in loss.items() if k != "name"},
                                                       **self.scheduled})
        self.epoch = epoch
        self.model.train()
        self.method.train()
        self.method.start_epoch(epoch, self.recipe["epochs"])
        self.loss_sum = torch.zeros((), device=self.device)
        self.meter = terms.TermMeter(self.device)
        self.correct = torch.zeros((), device=self.device, dtype=torch.long)
        self.seen = 0
        self.record_steps, self.step_losses = epoch == 0, []
        self.t0 = time.time()

    def step(self, x, y, z_t, ft=None, index=None, progress: float = 0.0) -> None:
        """One SGD step. ``ft``: the teacher's extract() of x (methods with taps), ``index``: the
        samples' training-set indices (CRD), ``progress``: the fraction of the epoch done."""
        with self.rng.own():
            with accel.autocast(self.device, self.accel_opts):
                fs = self.model.extract(x) if self.method.taps else None
                z_s = fs["logits"] if fs is not None else self.forward(x)
            # the methods compute in float32 under any autocast; the loss is their terms' sum
            parts = self.method.loss_terms(methods.Step(z_s, z_t, y, self.epoch, progress, fs, ft, index))
            loss = methods.total(parts)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            gn = terms.grad_norm(p for g in self.optimizer.param_groups for p in g["params"])
            self.optimizer.step()
        self.record_step(loss, parts, z_s, y, gn)

    def record_step(self, loss, parts, z_s, y, gn) -> None:
        """A step's accounting, on the device: loss, terms, gradient norm, accuracy, first losses."""
        self.loss_sum += loss.detach() * len(y)
        self.meter.add(parts, loss, len(y), gn)
        self.correct += (z_s.detach().argmax(1) == y).sum()
        self.seen += len(y)
        if self.record_steps and len(self.step_losses) < FIRST_STEPS_RECORDED:
            self.step_losses.append(loss.detach())  # read at the epoch's end: no host sync here

    def end_epoch(self, epoch: int, data, options: ExecOptions) -> None:
        train_loss = self.loss_sum.item() / max(self.seen, 1)  # one host sync per epoch
        epoch_terms = self.meter.summary()
        if not math.isfinite(train_loss):
            raise RunFailed(f"non-finite training loss ({train_loss}) in epoch {epoch + 1}: "
                            + terms.nonfinite_reason(epoch_terms))
        epoch_terms.pop("first_nonfinite")
        if self.recipe["bn_recalibration"]:
            with self.rng.own():  # dropout draws come from the run's own stream
                recalibrate_bn(self.model, data.train_batches(self.seed, f"bn{epoch}"), self.accel_opts)
        ev = self.last_eval = evaluate(self.model, data.test_batches())
        self.history.append({"epoch": epoch + 1, "lr": self.lr, "train_loss": train_loss, **epoch_terms,
                             "train_top1_augmented": self.correct.item() / max(self.seen, 1) * 100,
                             "test_top1": ev["top1"], "test_top5": ev["top5"], "time_s": time.time() - self.t0,
                             **({"loss_params": self.scheduled} if self.scheduled else {})})
        if self.recipe.get("epoch_sharpness_gap"):
            self.history[-1]["test_sharpness_gap"] = self.sharpness_gap(ev["logits"], data)
        if self.step_losses:  # the golden canary compares these step by step (benchmark/commands/canary.py)
            self.history[-1]["first_steps_loss"] = [float(v) for v in torch.stack(self.step_losses).cpu()]
        self.save_checkpoint(epoch)
        self.write_metrics(options)
        self.epoch_times.append(time.time() - self.t0)
        self.next_epoch = epoch + 1
        if options.on_epoch:
            options.on_epoch({"run": self.run_id, **self.history[-1], "epochs": self.recipe["epochs"]})

    def sharpness_gap(self, logits: torch.Tensor, data) -> float:
        """ATKD's sharpness gap (Eq. 6 / Eq. 15) of this epoch's test logits, mean over the test set:
        the teacher's (computed once) minus the student's at the temperatures the run distils with
        (``recipe.epoch_sharpness_gap``, ATKD Fig. 2). Reads no random stream: training is unchanged."""
        if self.teacher is None:
            raise RunFailed("recipe.epoch_sharpness_gap needs a teacher")
        if self.teacher_test is None:
            self.teacher_test = evaluate(self.teacher, data.test_batches())["logits"]
        teacher_tau, student_tau = analysis.loss_temperatures(self.cfg["loss"])
        return float(analysis.sharpness_gap(logits, self.teacher_test, teacher_tau, student_tau).mean())

    # ------------------------------------------------------------ the result

    def finish(self, data, options: ExecOptions, fused_with: int) -> dict:
        """Write the final weights and test logits; return the result."""
        if self.metrics_lines is None:  # resumed after the last epoch: drop what a kill may have torn
            self.store.rewrite_metrics(self.run_id, [*self.pretraining.history, *self.history])
            self.metrics_lines = len(self.pretraining.history) + len(self.history)
        ev = self.last_eval or evaluate(self.model, data.test_batches())  # resumed after the last epoch
        self.store.write_run_file(self.run_id, MODEL, tensor_bytes(self.model.state_dict()))
        # Test logits feed ensembles and analyses (logit sums of ~1e-5 need float32); ImageNet-size
        # ones (50k x 1000) are kept in float16 to stay at 100 MB per run.
        logits = ev["logits"].cpu()
        if logits.numel() > 4_000_000:
            logits = logits.half()
        self.store.write_run_file(self.run_id, TEST_LOGITS,
                                  tensor_bytes({"logits": logits, "labels": ev["labels"].cpu()}))
        train_eval = evaluate(self.model, data.train_eval_batches()) if self.recipe["final_train_eval"] else None
        return done_result(self, train_eval, {**self.execution(options, fused_with), "data_loading": data.record()})

    def execution(self, options: ExecOptions, fused_with: int) -> dict:
        """How the run was executed, as it applied to this run."""
        record = {**options.record(), "fused_with": fused_with,
                  "horizontal_group": self.horizontal or horizontal.record(self, None, "trained no epoch here"),
                  "read_back": accel.read_back(self.device, self.accel_opts, self.model)}
        if self.horizontal and self.horizontal["mode"] == "batched" and record["compile"] != "off":
            record["compile"] = f"requested {record['compile']}, not applied: horizontal lane"
        if self.method.taps and record["compile"] != "off":
            # A feature run trains through the networks' extract(), which torch.compile does not wrap.
            record["compile"] = f"requested {record['compile']}, not applied: feature taps"
        return record


def numerics_mismatch(state: dict, accel_opts: Accel) -> str | None:
    """Why a checkpoint must not be resumed under ``accel_opts`` (None: it may): its epochs ran under
    another numerics policy, or other overrides, and one run must not mix them. A checkpoint from
    before policies were recorded may be resumed under any."""
    ran, now = state.get("numerics"), accel_opts.label()
    if ran is None or ran == now:
        return None
    return (f"its checkpoint was trained under --numerics {ran}, this process runs --numerics {now}: resume it "
            "under the same policy (or remove the run's folder to train it afresh)")


# The name bench.py and the tests use.
Student = TrainingRun


def train_runs(cfgs: list[dict], store: Store, options: ExecOptions | None = None) -> dict[str, dict | None]:
    """Train runs that share a fuse_key together: one data stream, one teacher forward per batch.
    Under ``--horizontal on`` runs that share only a lane_key (other seeds or teachers) train
    together too, each (seed, teacher) a stream of its own (``Stream``).

    Returns run id -> result (None for a run a progress hook dropped with StopRun). Finished runs
    are returned as they are; the others are resumed from their checkpoints and trained in
    lockstep, each joining at its own next epoch."""
    options = options or ExecOptions()
    if len({fuse_key(c) for c in cfgs}) > 1 and (options.accel.horizontal != "on" or len({lane_key(c) for c in cfgs}) > 1):
        raise ValueError("train_runs: these runs differ in data, recipe, seed or teacher; train them apart "
                         "(under --horizontal on, only seeds and teachers may differ)")
    results: dict[str, dict | None] = {}
    todo = []
    for cfg in cfgs:
        run_id = config.run_id(cfg)
        finished = store.result(run_id)
        if finished is not None and finished.get("status") == "done":
            results[run_id] = finished
        elif run_id not in [config.run_id(c) for c in todo]:
            todo.append(cfg)
    if not todo:
        return results
    revisions.current_revisions()  # a malformed ledger is bad input, before anything is written
    cfg0 = todo[0]
    data = build_pipeline(cfg0, options)  # missing dataset files: BadInput before anything is written
    for cfg in todo:
        store.ensure_config(config.run_id(cfg), cfg)
    device = torch.device(options.device)
    accel_opts = options.accel.resolved(device)
    accel.configure(accel_opts)
    start = time.time()
    students: list[TrainingRun] = []
    streams: dict[str, Stream] = {}  # fuse_key -> its stream
    stream_of: dict[str, Stream] = {}  # run id -> its stream
    for cfg in todo:
        key = fuse_key(cfg)
        if key not in streams:
            try:
                teacher = load_teacher(cfg, store, device)
            except RunFailed as err:
                streams[key] = err
            else:
                # An in-memory pipeline's batches are a function of (seed, epoch): streams share it; a
                # loader's sampler is set per iteration, so another seed gets a loader of its own.
                own = data if not streams or isinstance(data, TensorPipeline) else build_pipeline(cfg, options)
                streams[key] = Stream(cfg, own, teacher, accel_opts)
        stream = streams[key]
        if isinstance(stream, RunFailed):
            results[config.run_id(cfg)] = failed_result(cfg, config.run_id(cfg), str(stream), options)
            continue
        try:
            students.append(TrainingRun(cfg, store, device, accel_opts, teacher=stream.teacher, data=stream.data))
            stream_of[students[-1].run_id] = stream
        except RunFailed as err:
            results[config.run_id(cfg)] = failed_result(cfg, config.run_id(cfg), str(err), options)

    def guarded(student, action) -> None:
        """Run ``action``; a failed run (RunFailed) or a dropped one (StopRun) leaves the group."""
        try:
            action()
        except (RunFailed, StopRun, WriteRefused) as err:  # WriteRefused: the lease passed to another
            students.remove(student)
            results[student.run_id] = failed_result(student.cfg, student.run_id, str(err), options) \
                if isinstance(err, RunFailed) else None

    # Pre-training stages run per student (each with its own batches), before the fused loop.
    for s in [s for s in students if s.pretraining.pending]:
        guarded(s, lambda s=s: s.pretrain(stream_of[s.run_id].data, stream_of[s.run_id].teacher, options))

    epochs = cfg0["recipe"]["epochs"]
    for epoch in range(min([s.next_epoch for s in students], default=epochs), epochs):
        active = [s for s in students if s.next_epoch == epoch]
        if not active:
            continue
        for s in active:
            s.begin_epoch(epoch)
        batched = horizontal.form(active, accel_opts.horizontal)
        # Each stream of an active run, in lockstep (the same steps: the same data and recipe). The
        # teacher's features are computed (once per batch) only if some student needs them.
        live = list({id(stream_of[s.run_id]): stream_of[s.run_id] for s in active}.values())
        features = any(s.method.taps for s in active)
        with_index = any(s.needs_index for s in active)
        steps = len(batch_indices(data.num_train, data.batch_size, data.drop_last, data.steps_per_epoch))
        every = max(1, min(options.step_every, steps // 8))
        step = GroupStep(device, accel_opts, stream_of)
        for i, raw in enumerate(zip(*(st.batches(epoch, with_index) for st in live))):
            if options.on_step and i and i % every == 0:
                options.on_step({"runs": [s.run_id for s in active], "epoch": epoch + 1, "epochs": epochs,
                                 "step": i, "steps": steps, "images": i * data.batch_size})
            step(list(zip(live, raw)), active, batched, features, progress=i / steps)
        for lane in batched:
            lane.unstack()
        for s in active:
            guarded(s, lambda s=s, epoch=epoch: s.end_epoch(epoch, stream_of[s.run_id].data, options))
    for s in list(students):
        guarded(s, lambda s=s: results.__setitem__(
            s.run_id, s.finish(stream_of[s.run_id].data, options, fused_with=len(cfgs))))
    elapsed = time.time() - start
    for run_id, res in results.items():
        if res is not None and "wall_time_s" not in res:
            res["wall_time_s"] = elapsed / max(1, len(todo))  # the group's time, shared out
            try:
                store.write_result(run_id, res)
            except WriteRefused:  # another worker took the run over (and may have finished it)
                results[run_id] = None
    return results


def train_run(cfg: dict, store: Store, options: ExecOptions | None = None) -> dict:
    """Train (or resume, or skip) one run; return its result, which is also in the store."""
    result = train_runs([cfg], store, options)[config.run_id(cfg)]
    if result is None:
        raise StopRun(config.run_id(cfg))
    return result
