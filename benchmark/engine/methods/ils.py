"""ILS: KD with only the first two terms of the ATS decomposition (Li et al., NeurIPS 2022, Fig. 2).

ATS Eq. 2 (papers/ats.txt:78) splits the KD term of Eq. 1, without its coefficient lambda tau^2,
with p = softmax(f / tau), y the target and e(q^T) = (1 / (C - 1)) sum_{c != y} p^T_c:

    l_kd = - p^T_y log p^S_y                                 (I)   correct guidance
           - sum_{c != y} e(q^T) log p^S_c                   (II)  smooth regularization
           - sum_{c != y} (p^T_c - e(q^T)) log p^S_c          (III) class discriminability

"we only keep the first two terms in Eq. 2, which works similarly to the instance-specific label
smoothing (abbreviated as "ILS")" (ats.txt:164-188). Terms (I) + (II) are the cross-entropy of the
student against the target r with r_y = p^T_y(tau) and r_c = (1 - p^T_y(tau)) / (C - 1) for c != y:
label smoothing whose strength is the teacher's own, per sample (ats.txt:82). The loss, weighted as
Eq. 1 weights the KD term it replaces:

    L = ce_weight * CE(p^S(1), y) + kd_weight * s^2 * mean_i [ - sum_c r_c log p^S_c(tau_s) ]

s^2 as this suite's ``kd`` (``tau_squared``, ``tau_scale``): "student" squares tau_s, the ATS
authors' distill.py (lxcnju/ATS-LargeKD@3b34629, distill.py:114-116, ``s_tau * s_tau``, the
mean over the batch of the per-sample sum); "teacher" squares tau, Eq. 1's lambda tau^2. The
authors' code has no ILS (distill.py trains KD and ATS only): the loss is the paper's words, and
which temperature the student takes and which is squared are the readings the options name.
``divergence`` "soft_ce" is Eq. 2's form; "kl" subtracts r's entropy (the same gradient).

Defaults: ATS App. C.3's lambda = 0.5 (ce_weight = kd_weight = 0.5), tau 4, the student at the
teacher's tau (``student_tau`` None), tau_scale "student", soft_ce. With p^T's wrong classes all
equal, (III) is 0 and ILS is KD (``kd`` with divergence soft_ce); in general ILS + (III) = KD
(tests/test_ils.py, float64).

Terms: "ce" and "ils" (kd_weight * s^2 * the batch mean above), summing to L.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from benchmark.engine.precision import upcast


def ils_target(z_t: torch.Tensor, y: torch.Tensor, tau: float) -> torch.Tensor:
    """log r (N, C): log p^T_y(tau) at the target, log((1 - p^T_y(tau)) / (C - 1)) elsewhere."""
    z = z_t / tau
    log_all = torch.logsumexp(z, dim=1, keepdim=True)
    log_target = z.gather(1, y[:, None]) - log_all
    # log(1 - p_y) as the logsumexp of the other logits (stable where p_y is near 1)
    others = z.scatter(1, y[:, None], -math.inf)
    log_e = torch.logsumexp(others, dim=1, keepdim=True) - log_all - math.log(z.shape[1] - 1)
    return log_e.expand_as(z).scatter(1, y[:, None], log_target)


def ils_terms(z_s: torch.Tensor, z_t: torch.Tensor, y: torch.Tensor, *, tau: float = 4.0,
              student_tau: float | None = None, ce_weight: float = 0.5, kd_weight: float = 0.5,
              tau_squared: bool = True, tau_scale: str = "student",
              divergence: str = "soft_ce") -> dict[str, torch.Tensor]:
    """The ILS loss's terms (module docstring): {"ce", "ils"}."""
    student_tau = tau if student_tau is None else student_tau
    if not (0 < tau < math.inf and 0 < student_tau < math.inf):
        raise ValueError(f"tau and student_tau must be finite and > 0, got {tau!r}, {student_tau!r}")
    if tau_scale not in ("student", "teacher") or divergence not in ("soft_ce", "kl"):
        raise ValueError(f"tau_scale must be student|teacher and divergence soft_ce|kl, got {tau_scale!r}, "
                         f"{divergence!r}")
    if z_s.dim() != 2 or z_s.shape[1] < 2:
        raise ValueError(f"student logits must be (N, C) with C >= 2, got shape {tuple(z_s.shape)}")
    if z_t is None or z_t.shape != z_s.shape:
        raise ValueError(f"ILS needs teacher logits of the student's shape {tuple(z_s.shape)}")
    if y is None or tuple(y.shape) != (z_s.shape[0],):
        raise ValueError(f"targets must be (N,) = ({z_s.shape[0]},), got {None if y is None else tuple(y.shape)}")
    z_s, z_t, y = upcast(z_s), upcast(z_t).detach(), y.long()
    log_r = ils_target(z_t, y, tau)
    log_p_s = F.log_softmax(z_s / student_tau, dim=1)
    r = log_r.exp()
    per_sample = -(r * log_p_s).sum(dim=1)
    if divergence == "kl":
        per_sample = per_sample + (r * log_r).sum(dim=1)
    if tau_squared:
        per_sample = per_sample * (student_tau if tau_scale == "student" else tau) ** 2
    return {"ce": ce_weight * F.cross_entropy(z_s, y), "ils": kd_weight * per_sample.mean()}
