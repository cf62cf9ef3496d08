"""Horizontal fusion: the students of one architecture in a fused group trained as ONE batched model.

A fused group (train.py's ``train_runs``) already shares one data stream and one teacher forward;
here its students of one architecture also share every kernel: their parameters and buffers are
stacked (``torch.func.stack_module_state``) and the network runs once under
``vmap(functional_call)``, which turns each convolution into one grouped convolution over the N
students, each BatchNorm into one over N*C channels, each linear layer into one batched matmul
(HFTA's fusion, Wang et al., MLSys 2021, done by torch's batching rules instead of rewritten models,
so every architecture and op is covered, channel shuffles included).

What stays each student's own: its parameters and BN statistics (rows of the stacked tensors), its
loss with its options and tau, its loss terms, gradient norm, metrics and checkpoint. The total loss
is the plain sum of the students' losses, so each row's gradient is its own student's (d sum / d
L_i = 1, exactly) and a non-finite student spoils only its own rows. One SGD over the stacked tensors
equals N per-student SGDs because SGD (momentum, weight decay, nesterov) is elementwise and the
group shares its recipe, so its lr, momentum and weight decay (``lane_of`` checks the optimizers'
settings anyway).

A lane lives one epoch: ``Lane(runs)`` stacks the runs' weights, buffers and momentum buffers, its
``step`` trains them, ``unstack`` writes everything back into each run's own model and optimizer,
where the trainer's end of epoch (BN recalibration, evaluation, checkpoint, metrics) runs per run,
unfused, as before. So a checkpoint is the same whether the run was trained in a lane or not, and a
resume stacks the same rows again.

Not bit-identical to training apart: a grouped convolution sums its weight gradients in another
order (about 1e-6 relative in float32 on the CPU, 1e-15 in float64; tests/test_horizontal.py), which
is why ``--horizontal`` is on only under ``--numerics fast``. What cannot be batched trains apart,
with the reason (``why_apart``).
"""

from __future__ import annotations

import torch
from torch.func import functional_call, stack_module_state, vmap

from . import accel, methods, terms

MODES = ("on", "off")


def why_apart(run) -> str | None:
    """Why ``run`` (a train.TrainingRun) cannot train in a lane; None when it can."""
    if run.method.taps or run.method.adapters is not None:
        return (f"loss {run.cfg['loss']['name']!r} reads feature taps or trains adapters: its taps, adapters "
                "and extract() are not batched yet")
    if any(isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0 for m in run.model.modules()):
        return "its network has dropout: one batched kernel has no per-run random stream"
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.momentum is None for m in run.model.modules()):
        return "a BatchNorm with momentum=None reads its batch count on the host, which vmap cannot"
    return None


def lanes(runs: list, mode: str) -> tuple[list[list], dict[str, str]]:
    """The runs that train batched, as lanes of one architecture (two runs at least), and for each
    run that trains on its own why it does (run id -> reason)."""
    if mode == "off":
        return [], {r.run_id: "off" for r in runs}
    alone: dict[str, str] = {}
    by_model: dict[str, list] = {}
    for r in runs:
        reason = why_apart(r)
        if reason:
            alone[r.run_id] = reason
        else:
            by_model.setdefault(r.cfg["model"], []).append(r)
    out = []
    for model, members in by_model.items():
        if len(members) == 1:
            alone[members[0].run_id] = f"no other student of {model} in its group"
        else:
            out.append(members)
    return out, alone


def form(runs: list, mode: str) -> list[Lane]:
    """This epoch's lanes of ``runs`` (each run's ``begin_epoch`` has run); every run learns whether
    it is in one (``in_lane``) and, the first time, what its result records (``horizontal``)."""
    groups, alone = lanes(runs, mode)
    for r in runs:
        lane = next((g for g in groups if r in g), None)
        r.in_lane = lane is not None
        if r.horizontal is None:
            r.horizontal = record(r, lane, alone.get(r.run_id))
    return [Lane(g) for g in groups]


def _hyper(group: dict) -> dict:
    return {k: v for k, v in group.items() if k != "params"}


class Lane:
    """N runs of one architecture stacked for one epoch (each run's ``begin_epoch`` has run)."""

    def __init__(self, runs: list):
        self.runs = runs
        models = [r.model for r in runs]
        self.names = [n for n, _ in models[0].named_parameters()]
        params, self.buffers = stack_module_state(models)
        self.params = {n: params[n] for n in self.names}
        # The model itself runs each stacked forward: functional_call swaps its tensors for the stacked
        # ones for the call only; its own forward (an fp32 head under autocast included) is what runs.
        shared = models[0]
        self.forward = vmap(lambda p, b, x: functional_call(shared, (p, b), (x,)), in_dims=(0, 0, None))
        self.forward_each = vmap(lambda p, b, x: functional_call(shared, (p, b), (x,)), in_dims=(0, 0, 0))
        self.optimizer = self._stacked_optimizer()

    def _stacked_optimizer(self) -> torch.optim.SGD:
        """The runs' SGD over the stacked tensors: the same groups and settings, the momentum
        buffers stacked."""
        first = self.runs[0].optimizer
        for r in self.runs[1:]:
            if [_hyper(g) for g in r.optimizer.param_groups] != [_hyper(g) for g in first.param_groups]:
                raise ValueError(f"runs {self.runs[0].run_id} and {r.run_id} differ in their optimizer's settings")
        name_of = {id(p): n for n, p in self.runs[0].model.named_parameters()}
        groups = [{**_hyper(g), "params": [self.params[name_of[id(p)]] for p in g["params"]]}
                  for g in first.param_groups]
        opt = torch.optim.SGD(groups, lr=groups[0]["lr"])
        per_run = [dict(r.model.named_parameters()) for r in self.runs]
        for name in self.names:
            bufs = [r.optimizer.state.get(params[name], {}).get("momentum_buffer") for r, params in
                    zip(self.runs, per_run)]
            if all(b is not None for b in bufs):
                opt.state[self.params[name]]["momentum_buffer"] = torch.stack(bufs)
            elif any(b is not None for b in bufs):
                raise ValueError(f"runs of one lane at different steps: some hold a momentum buffer for {name}")
        return opt

    def step(self, x: torch.Tensor, y: torch.Tensor, z_t: torch.Tensor | None, per_run: bool = False,
             progress: float = 0.0) -> None:
        """One SGD step of every run. ``per_run``: x, y and z_t carry a leading run dimension (runs
        of other seeds or teachers, each with its own batch); else all runs see the same batch.
        ``progress``: the fraction of the epoch's steps done before this one (methods.Step)."""
        run0 = self.runs[0]
        with accel.autocast(run0.device, run0.accel_opts):
            z = (self.forward_each if per_run else self.forward)(self.params, self.buffers, x)
        losses, parts = [], []
        for i, r in enumerate(self.runs):
            yi, ti = (y[i], None if z_t is None else z_t[i]) if per_run else (y, z_t)
            p = r.method.loss_terms(methods.Step(z[i], ti, yi, r.epoch, progress))
            losses.append(methods.total(p))
            parts.append(p)
        self.optimizer.zero_grad(set_to_none=True)
        torch.stack(losses).sum().backward()
        for i, r in enumerate(self.runs):
            gn = terms.grad_norm(_Row(self.params[n], i) for n in self.names)
            yi = y[i] if per_run else y
            r.record_step(losses[i], parts[i], z[i], yi, gn)
        self.optimizer.step()

    @torch.no_grad()
    def unstack(self) -> None:
        """Write each run's rows back into its own model and optimizer (its momentum buffers)."""
        for i, r in enumerate(self.runs):
            params = dict(r.model.named_parameters())
            for name, p in params.items():
                p.copy_(self.params[name][i])
                buf = self.optimizer.state.get(self.params[name], {}).get("momentum_buffer")
                if buf is not None:
                    r.optimizer.state[p]["momentum_buffer"] = buf[i].clone()
            for name, b in r.model.named_buffers():
                b.copy_(self.buffers[name][i])


class _Row:
    """Row ``i`` of a stacked parameter, as terms.grad_norm sees a parameter (its ``grad``)."""

    def __init__(self, stacked: torch.Tensor, i: int):
        self.grad = None if stacked.grad is None else stacked.grad[i]


def record(run, lane: list | None, reason: str | None) -> dict:
    """What a run's result records of its horizontal fusion: the mode, the lane's size and members
    (the run itself alone), and why it trained alone."""
    if lane is not None:
        return {"mode": "batched", "size": len(lane), "members": [r.run_id for r in lane]}
    return {"mode": "off" if reason == "off" else "alone", "size": 1, "members": [run.run_id],
            **({"why": reason} if reason and reason != "off" else {})}
