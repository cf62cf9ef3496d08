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
from torch.utils._pytree import tree_flatten, tree_unflatten

from . import accel, methods, terms

MODES = ("on", "off")


# Feature methods that cannot train in a lane, and why (every other one can: see the module docstring).
NOT_BATCHED = {"sckd": "its gates differentiate the loss by the student's own parameters (attach()), which a lane "
                       "replaces by rows of stacked tensors"}


def why_apart(run) -> str | None:
    """Why ``run`` (a train.TrainingRun) cannot train in a lane; None when it can."""
    name = run.cfg["loss"]["name"]
    if name in NOT_BATCHED:
        return f"loss {name!r}: {NOT_BATCHED[name]}"
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
        # ones for the call only; its own forward (an fp32 head under autocast included) is what runs,
        # or its extract() when a member's method reads feature taps.
        self.taps = any(r.method.taps for r in runs)
        net = _Extract(models[0]) if self.taps else models[0]
        prefix = "net." if self.taps else ""
        self._spec, self._none = None, []

        def call(p, b, x):
            out = functional_call(net, ({prefix + k: v for k, v in p.items()}, {prefix + k: v for k, v in b.items()}),
                                  (x,))
            if not self.taps:
                return out
            leaves, self._spec = tree_flatten(out)  # vmap returns tensors only: the Nones are put back after
            self._none = [t is None for t in leaves]
            return [t for t in leaves if t is not None]

        self.forward = vmap(call, in_dims=(0, 0, None))
        self.forward_each = vmap(call, in_dims=(0, 0, 0))
        self.optimizer = self._stacked_optimizer()

    def _rows(self, x: torch.Tensor, per_run: bool) -> list:
        """Each run's output of the stacked forward: its logits, or its extract() dict."""
        out = (self.forward_each if per_run else self.forward)(self.params, self.buffers, x)
        if not self.taps:
            return list(out)
        rows = []
        for i in range(len(self.runs)):
            it = iter([t[i] for t in out])
            rows.append(tree_unflatten([None if none else next(it) for none in self._none], self._spec))
        return rows

    def _stacked_optimizer(self) -> torch.optim.SGD:
        """The runs' SGD over the stacked tensors: the same groups and settings, the momentum
        buffers stacked."""
        first = self.runs[0].optimizer
        for r in self.runs[1:]:
            if [_hyper(g) for g in r.optimizer.param_groups] != [_hyper(g) for g in first.param_groups]:
                raise ValueError(f"runs {self.runs[0].run_id} and {r.run_id} differ in their optimizer's settings")
        name_of = {id(p): n for n, p in self.runs[0].model.named_parameters()}
        # the networks' parameters only: a method's adapters stay in each run's own optimizer
        groups = [{**_hyper(g), "params": [self.params[name_of[id(p)]] for p in g["params"] if id(p) in name_of]}
                  for g in first.param_groups]
        groups = [g for g in groups if g["params"]]
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

    def step(self, x: torch.Tensor, y, z_t, per_run: bool = False, progress: float = 0.0, ft=None,
             index=None) -> None:
        """One SGD step of every run. ``per_run``: x is stacked with a leading run dimension and y,
        z_t, ft and index are indexed by run (runs of other seeds or teachers, each with its own
        batch); else all runs see the same batch. ``progress``: the fraction of the epoch's steps
        done before this one (methods.Step). ``ft``: the teacher's extract() (methods with taps),
        ``index``: the samples' dataset indices (CRD)."""
        run0 = self.runs[0]
        with accel.autocast(run0.device, run0.accel_opts):
            rows = self._rows(x, per_run)
        losses, parts, logits = [], [], []
        for i, r in enumerate(self.runs):
            yi, ti, fti, ii = (y[i], _at(z_t, i), _at(ft, i), _at(index, i)) if per_run else (y, z_t, ft, index)
            fs = rows[i] if self.taps else None
            z = fs["logits"] if self.taps else rows[i]
            with r.rng.own():  # a method's draws (CRD's negatives) come from the run's own stream
                p = r.method.loss_terms(methods.Step(z, ti, yi, r.epoch, progress, fs if r.method.taps else None,
                                                     fti if r.method.taps else None, ii))
            losses.append(methods.total(p))
            parts.append(p)
            logits.append(z)
        self.optimizer.zero_grad(set_to_none=True)
        for r in self.runs:
            if r.method.adapters is not None:
                r.optimizer.zero_grad(set_to_none=True)
        torch.stack(losses).sum().backward()
        for i, r in enumerate(self.runs):
            adapters = [] if r.method.adapters is None else list(r.method.adapters.parameters())
            gn = terms.grad_norm([*(_Row(self.params[n], i) for n in self.names), *adapters])
            r.record_step(losses[i], parts[i], logits[i], y[i] if per_run else y, gn)
        self.optimizer.step()
        for r in self.runs:
            if r.method.adapters is not None:  # its adapters only: the network's own tensors got no gradient
                r.optimizer.step()

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


def _at(values, i):
    return None if values is None else values[i]


class _Extract(torch.nn.Module):
    """A network whose forward is its extract() (functional_call runs a module's forward)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.extract(x)


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
