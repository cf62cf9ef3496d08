"""DKD: Decoupled Knowledge Distillation (Zhao, Cui, Song, Qiu, Liang; CVPR 2022).

With p = softmax(z / T) over the C classes, t the target class, the binary probabilities
b = [p_t, 1 - p_t] and the distribution among the non-target classes p^_i = p_i / (1 - p_t)
(i != t), the paper (Sect. 3; its text is not in shared/papers) rewrites classical KD as

    KD = KL(b^T || b^S) + (1 - p^T_t) KL(p^^T || p^^S) = TCKD + (1 - p^T_t) NCKD

and trains with the two parts decoupled, each with its own weight:

    DKD = alpha * TCKD + beta * NCKD.

The loss, as the authors' code trains it (megvii-research/mdistiller at commit a08d46f10d61,
``mdistiller/distillers/DKD.py``): lines 16-20 and 27-31 multiply each KL by T^2 and divide the
batch sum by N (KLDivLoss "batchmean"), line 71 adds ``CE_WEIGHT * CE(z_s, y)`` on the raw logits,
and line 72 scales the DKD part by ``min(epoch / WARMUP, 1)`` with the trainer's 1-based epoch
(``mdistiller/engine/trainer.py`` line 85 ``while epoch < EPOCHS + 1``, line 164 ``epoch=epoch``):

    L = ce_weight * CE(z_s, y) + w(e) * T^2 * (alpha * TCKD + beta * NCKD),  mean over the batch,
    w(e) = min((e + 1) / warmup_epochs, 1) for the 0-based epoch e (1 for warmup_epochs = 0),

constant within an epoch (the code's epoch is an integer; ``Step.progress`` is not read). Outside
training (``epoch`` None, e.g. ``make_loss("dkd")(z_s, z_t, y)``) w = 1: the paper's loss.
Defaults are mdistiller's (``mdistiller/engine/cfg.py`` lines 163-167): ce_weight 1, alpha 1,
beta 8, T 4, warm-up 20 epochs; its CIFAR-100 configs set BETA per pair (2.0 for ResNet56 ->
ResNet20, ``configs/cifar100/dkd/res56_res20.yaml``; 8 for ResNet32x4 -> ResNet8x4, the default).

Computed here without the code's two numerical shortcuts, in exact arithmetic the same loss: the
code takes the non-target part of b as the sum of the non-target p and its log with ``torch.log``
(-inf where it underflows), and it masks the target out of p^ by subtracting 1000 from its logit;
here log b comes from log-softmax and logsumexp, and p^ is the softmax of the C - 1 non-target
logits themselves. tests/test_dkd.py checks the paper's formula in float64 (1e-12) and values from
mdistiller's own code (1e-6).

Terms: "ce", "tckd" (w * alpha * T^2 * TCKD) and "nckd" (w * beta * T^2 * NCKD), summing to L.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.engine.precision import upcast


def warmup_factor(epoch: int | None, warmup_epochs: float) -> float:
    """w(e) = min((e + 1) / warmup_epochs, 1) for the 0-based epoch e; 1 without a warm-up or epoch."""
    if epoch is None or warmup_epochs <= 0:
        return 1.0
    return min((epoch + 1) / warmup_epochs, 1.0)


def _kl(log_p_t: torch.Tensor, log_p_s: torch.Tensor) -> torch.Tensor:
    """Per-sample sum_i p_t,i (log p_t,i - log p_s,i) (0 log 0 = 0 where p_t underflows)."""
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)


def _decoupled(z: torch.Tensor, target: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(log b, log p^): log [p_t, 1 - p_t] (N, 2) and the log-softmax of the non-target logits (N, C-1)."""
    z = z / tau
    # the non-target classes of each row, in order, by gather (a boolean mask would sync the host on CUDA)
    others = torch.arange(z.shape[1] - 1, device=z.device).expand(z.shape[0], -1)
    non_target = z.gather(1, others + (others >= target[:, None]))
    log_all = torch.logsumexp(z, dim=1, keepdim=True)
    log_b = torch.cat([z.gather(1, target[:, None]), torch.logsumexp(non_target, dim=1, keepdim=True)], dim=1)
    return log_b - log_all, F.log_softmax(non_target, dim=1)


def dkd_terms(z_s: torch.Tensor, z_t: torch.Tensor, y: torch.Tensor, *, ce_weight: float = 1.0,
              alpha: float = 1.0, beta: float = 8.0, tau: float = 4.0, warmup_epochs: float = 20.0,
              epoch: int | None = None) -> dict[str, torch.Tensor]:
    """The DKD loss's terms (module docstring): {"ce", "tckd", "nckd"}."""
    if z_s.dim() != 2 or z_s.shape[1] < 2:
        raise ValueError(f"student logits must be (N, C) with C >= 2, got shape {tuple(z_s.shape)}")
    if z_t is None or z_t.shape != z_s.shape:
        raise ValueError(f"DKD needs teacher logits of the student's shape {tuple(z_s.shape)}")
    if y is None or tuple(y.shape) != (z_s.shape[0],):
        raise ValueError(f"targets must be (N,) = ({z_s.shape[0]},), got {None if y is None else tuple(y.shape)}")
    z_s, z_t, y = upcast(z_s), upcast(z_t).detach(), y.long()
    b_s, p_s = _decoupled(z_s, y, tau)
    b_t, p_t = _decoupled(z_t, y, tau)
    w = warmup_factor(epoch, warmup_epochs) * tau**2
    return {"ce": ce_weight * F.cross_entropy(z_s, y),
            "tckd": (w * alpha) * _kl(b_t, b_s).mean(),
            "nckd": (w * beta) * _kl(p_t, p_s).mean()}
