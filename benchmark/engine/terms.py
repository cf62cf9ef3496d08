"""Loss terms: what a method adds up, accounted next to the total.

A method (benchmark/engine/methods) returns its weighted terms ``{name: w_i * T_i}`` ("ce", "kd",
"feature", ...); the loss is their sum, ``L = sum_i w_i * T_i``, in the order given. The trainer
passes them here each step: :class:`TermMeter` keeps each term's epoch mean beside the total, so a
diverging run shows which addend blew up. Terms are tensors on the loss's device (no host sync
per step).
"""

from __future__ import annotations

import torch


def grad_norm(params) -> torch.Tensor | None:
    """The global L2 norm of the gradients of ``params`` (those that have one), on their device,
    as a 0-d tensor: ``sqrt(sum_p ||grad_p||^2)``; None when no parameter has a gradient."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return None
    return torch.nn.utils.get_total_norm(grads, 2.0)


class TermMeter:
    """One epoch's accounting of the loss terms, kept on the device (no host sync per step).

    Per step: each term's value times the batch size is summed (the epoch mean is the sum over
    the samples seen, as the trainer's ``train_loss``); per term the number of steps at which
    it was non-finite and the first such step; the same for the total; the gradient norm.
    :meth:`summary` reads it all once, at the end of the epoch.
    """

    def __init__(self, device):
        self.device = torch.device(device)
        self.sums: dict[str, torch.Tensor] = {}
        self.bad: dict[str, torch.Tensor] = {}
        self.first_bad: dict[str, torch.Tensor] = {}
        self.grad_sum = torch.zeros((), device=self.device)
        self.grad_steps = 0
        self.steps = self.seen = 0

    def add(self, terms: dict[str, torch.Tensor], total: torch.Tensor, n: int,
            grad: torch.Tensor | None = None) -> None:
        for name, v in {**terms, "total": total}.items():
            v = v.detach().float()
            bad = ~torch.isfinite(v)
            if name not in self.sums:
                self.sums[name] = torch.zeros((), device=self.device)
                self.bad[name] = torch.zeros((), device=self.device, dtype=torch.long)
                self.first_bad[name] = torch.full((), -1, device=self.device, dtype=torch.long)
            self.sums[name] += v * n
            self.bad[name] += bad
            first = self.first_bad[name]
            self.first_bad[name] = torch.where(bad & (first < 0), torch.full_like(first, self.steps), first)
        if grad is not None:
            self.grad_sum += grad.detach().float()
            self.grad_steps += 1
        self.steps += 1
        self.seen += n

    def summary(self) -> dict:
        """``loss_<term>``: each term's epoch mean; ``grad_norm``: the mean over steps of the
        gradient norm (None if not measured); ``nonfinite_frac``: the fraction of steps whose
        total loss was non-finite; ``first_nonfinite``: term -> first bad step (only bad terms)."""
        keys = list(self.sums)
        sums = torch.stack([self.sums[k] for k in keys] + [self.grad_sum]).tolist()  # the host reads
        counts = torch.stack([self.bad[k] for k in keys] + [self.first_bad[k] for k in keys]).tolist() if keys else []
        bad, first = dict(zip(keys, counts[:len(keys)])), dict(zip(keys, counts[len(keys):]))
        out = {f"loss_{k}": v / max(self.seen, 1) for k, v in zip(keys, sums) if k != "total"}
        out["grad_norm"] = sums[-1] / self.grad_steps if self.grad_steps else None
        out["nonfinite_frac"] = bad.get("total", 0) / max(self.steps, 1)
        out["first_nonfinite"] = {k: first[k] for k in keys if bad[k]}
        return out


def nonfinite_reason(summary: dict) -> str:
    """Which term went non-finite first (the one that did it) and the fraction of non-finite steps."""
    first = {k: s for k, s in summary["first_nonfinite"].items() if k != "total"}
    if not first:
        return "no term was recorded non-finite"
    step = min(first.values())
    culprits = sorted(k for k, s in first.items() if s == step)
    return (f"term {' and '.join(map(repr, culprits))} went non-finite first (step {step + 1} of the epoch); "
            f"non-finite steps: total {summary['nonfinite_frac']:.3g}")
