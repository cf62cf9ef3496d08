"""Pre-training stages (RepDistiller's init(), used by AB, FT, FSP and IE-AT): epochs of plain SGD
at a constant rate on some modules, run per run before the main training, one checkpoint per
epoch, so a run killed inside a stage resumes inside it.

Names: a method's stages are ``PretrainStage``s (distillers/base.py, from its ``pretrain_stages``),
a run's progress through them ``PretrainProgress`` (``TrainingRun.pretraining``). "init" in the code
names only the re-initialisation scheme (init_schemes.py, ``recipe.init_scheme``); the stored names
that predate this split stay as they are, being contracts: the checkpoint's ``init_done`` /
``init_history`` / ``init_optimizer``, the result's ``init_stages``, the options ``init_epochs`` /
``init_lr`` and the config's ``init`` (pretrained weights, assembly.py)."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import torch

from . import accel, terms
from .distillers.base import PretrainStage
from .optimizers import stage_optimizer
from .train_errors import RunFailed

if TYPE_CHECKING:
    from .execution import ExecOptions
    from .train import TrainingRun


class PretrainProgress:
    """The stages of one run and how far they got: flattened to (stage, epoch) pairs; the
    progress (epochs done, their metrics, the stage optimizer's state) is part of the checkpoint."""

    def __init__(self, stages: list[PretrainStage]):
        self.stages = stages
        self.schedule = [(k, e) for k, st in enumerate(stages) for e in range(st.epochs)]
        self.done, self.history, self.optimizer_state = 0, [], None
        self.resumed_from: int | None = None

    @property
    def pending(self) -> bool:
        return self.done < len(self.schedule)

    def state_dict(self) -> dict:
        """The checkpoint's keys for the stages (none for a run without stages)."""
        if not self.stages:
            return {}
        return {"init_done": self.done, "init_history": self.history, "init_optimizer": self.optimizer_state}

    def load_state_dict(self, state: dict) -> None:
        self.done = state.get("init_done", 0)
        self.history = list(state.get("init_history", []))
        self.optimizer_state = state.get("init_optimizer")
        self.resumed_from = self.done if 0 < self.done < len(self.schedule) else None

    def summary(self) -> dict:
        """The result's ``init_stages`` entry (none for a run without stages)."""
        if not self.stages:
            return {}
        return {"init_stages": {"stages": [{"name": st.name, "epochs": st.epochs, "lr": st.lr} for st in self.stages],
                                "history": self.history, "resumed_from_init_epoch": self.resumed_from}}


def pretrain(run: TrainingRun, data, teacher, options: ExecOptions) -> None:
    """The run's pre-training stages still to run, one checkpoint per epoch (RepDistiller's init():
    SGD at a constant rate, the recipe's momentum and weight decay, on the stage's modules; the
    student in eval mode, the stage's modules in train mode)."""
    progress = run.pretraining
    opt = None
    while progress.pending:
        k, e = progress.schedule[progress.done]
        stage = progress.stages[k]
        if opt is None or e == 0:
            opt, params = stage_optimizer(stage.modules, stage.lr, run.recipe, run.accel_opts)
            if e > 0 and progress.optimizer_state is not None:  # resumed inside this stage
                opt.load_state_dict(progress.optimizer_state)
        t0 = time.time()
        loss_sum, seen = torch.zeros((), device=run.device), 0
        meter = terms.TermMeter(run.device)
        run.model.eval()
        run.method.train(False)
        for m in stage.modules:
            m.train()
        for x, y in data.train_batches(run.seed, f"init{k}.{e}"):
            x = accel.prepare_input(x, run.accel_opts)
            with torch.no_grad(), accel.autocast(run.device, run.accel_opts):
                ft = teacher.extract(x)
            with run.rng.own():
                with accel.autocast(run.device, run.accel_opts):
                    fs = run.model.extract(x) if stage.needs_student else None
                loss = stage.loss(fs, ft, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                gn = terms.grad_norm(params)
                opt.step()
            loss_sum += loss.detach() * len(y)
            seen += len(y)
            meter.add({"stage": loss}, loss, len(y), gn)
        train_loss = loss_sum.item() / max(seen, 1)
        epoch_terms = meter.summary()
        if not math.isfinite(train_loss):
            raise RunFailed(f"non-finite loss ({train_loss}) in epoch {e + 1} of pre-training stage {stage.name}: "
                            + terms.nonfinite_reason(epoch_terms))
        epoch_terms.pop("first_nonfinite")
        progress.history.append({"stage": stage.name, "epoch": e + 1, "lr": stage.lr,
                                 "train_loss": train_loss, **epoch_terms, "time_s": time.time() - t0})
        progress.done += 1
        last_of_stage = e == stage.epochs - 1
        if last_of_stage:
            opt.zero_grad(set_to_none=True)  # no stale gradient reaches the main optimizer
        progress.optimizer_state = None if last_of_stage else opt.state_dict()
        run.save_checkpoint(epoch=-1)
        run.write_metrics(options)
        if options.on_epoch:
            options.on_epoch({"run": run.run_id, "stage": stage.name, "epoch": e + 1, "epochs": stage.epochs,
                              "train_loss": train_loss, "test_top1": None})
