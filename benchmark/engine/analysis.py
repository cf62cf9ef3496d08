"""Per-sample analysis metrics on logits, as the papers define them.

Every function takes logits ``(N, C)`` (and integer targets ``(N,)`` where the
definition needs the ground-truth class) and returns a per-sample tensor ``(N,)``
in float32 (float64 stays float64); the paper tables report the mean over a data
set, which the caller takes.

ATS  = Li et al., *Asymmetric Temperature Scaling Makes Larger Networks Teach Well
       Again* (NeurIPS 2022), Table 1 and Sect. 4.
ATKD = *Reducing the Teacher-Student Gap via Adaptive Temperatures* (ICLR 2022
       submission), Eq. 1, 4-6, 9-10, 15 and App. A.3-A.7.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Softmax of large logits in bf16/fp16 loses the small wrong-class probabilities these metrics are about.
from .precision import upcast as _float

__all__ = [
    "ats_probs",
    "target_probability",
    "derived_average",
    "derived_variance",
    "inherent_variance",
    "adaptive_temperature",
    "sharpness",
    "sharpness_gap",
    "entropy",
    "logit_sum",
]

STD_CHOICES = ("biased", "unbiased")


def _check_logits(logits: torch.Tensor, targets: torch.Tensor | None = None) -> None:
    if logits.dim() != 2:
        raise ValueError(f"logits must be (N, C), got shape {tuple(logits.shape)}")
    if targets is not None and tuple(targets.shape) != (logits.shape[0],):
        raise ValueError(
            f"targets must be (N,) = ({logits.shape[0]},), got shape {tuple(targets.shape)}"
        )


def _check_tau(name: str, tau: float) -> None:
    if not tau > 0 or tau == float("inf"):
        raise ValueError(f"{name} must be a finite number > 0, got {tau!r}")


# ---------------------------------------------------------------- ATS (Sect. 4)


def ats_probs(
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    tau1: float,
    tau2: float,
    log: bool = False,
) -> torch.Tensor:
    """Asymmetric temperature scaling, ATS Eq. 5.

        p_c(tau1, tau2) = exp(f_c / tau_c) / sum_j exp(f_j / tau_j),
        tau_i = I{i = y} tau1 + I{i != y} tau2

    One softmax over the whole vector, in which the ground-truth logit is divided
    by ``tau1`` and every other logit by ``tau2`` (the paper takes tau1 > tau2 > 0;
    tau1 == tau2 is ordinary temperature scaling). Returns ``(N, C)``
    probabilities, or log-probabilities with ``log=True`` (finite even where a
    probability underflows to 0, which keeps ``p * log p`` at 0 instead of NaN).
    """
    _check_logits(teacher_logits, targets)
    _check_tau("tau1", tau1)
    _check_tau("tau2", tau2)
    f = _float(teacher_logits)
    is_target = F.one_hot(targets.long(), f.shape[1]).bool()
    scaled = torch.where(is_target, f / tau1, f / tau2)
    return F.log_softmax(scaled, dim=1) if log else F.softmax(scaled, dim=1)


def _probs(logits, targets, tau, target_tau):
    if target_tau is None:
        _check_tau("tau", tau)
        return F.softmax(_float(logits) / tau, dim=1)
    return ats_probs(logits, targets, tau1=target_tau, tau2=tau)


def _wrong(x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The wrong-class entries ``[x_c]_{c != y}`` as an ``(N, C-1)`` tensor, order kept."""
    keep = ~F.one_hot(targets.long(), x.shape[1]).bool()
    return x[keep].view(x.shape[0], x.shape[1] - 1)


def _mean_var(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # ATS Table 1 divides by (C - 1), the number of wrong classes: the
    # population variance of the vector q, not the sample variance.
    e = q.mean(dim=1)
    return e, ((q - e[:, None]) ** 2).mean(dim=1)


def target_probability(
    logits: torch.Tensor, targets: torch.Tensor, tau: float = 1.0, target_tau: float | None = None
) -> torch.Tensor:
    """Correct-guidance estimator ``p_y(tau)`` (ATS Sect. 4.1, "target class probability").

    ``target_tau`` (default None: plain temperature scaling) gives the ATS
    probabilities of Eq. 5 with tau1 = target_tau and tau2 = tau.
    """
    _check_logits(logits, targets)
    p = _probs(logits, targets, tau, target_tau)
    return p.gather(1, targets.long()[:, None]).squeeze(1)


def derived_average(
    logits: torch.Tensor, targets: torch.Tensor, tau: float = 1.0, target_tau: float | None = None
) -> torch.Tensor:
    """Derived Average (DA), ATS Table 1: ``e(q) = sum_j q_j / (C - 1)``.

    ``q = [p_c]_{c != y}`` are the wrong-class entries of ``p = SF(f; tau)``, the
    softmax over *all* logits (so ``e(q) = (1 - p_y) / (C - 1)``). ``target_tau``
    as in :func:`target_probability`.
    """
    _check_logits(logits, targets)
    q = _wrong(_probs(logits, targets, tau, target_tau), targets)
    return _mean_var(q)[0]


def derived_variance(
    logits: torch.Tensor, targets: torch.Tensor, tau: float = 1.0, target_tau: float | None = None
) -> torch.Tensor:
    """Derived Variance (DV), ATS Table 1: ``v(q) = sum_j (q_j - e(q))^2 / (C - 1)``.

    ``q`` as in :func:`derived_average`. The paper's figures 5 and 7 plot the
    standard deviation ``sigma(q) = v(q) ** 0.5`` (App. C.4); take ``.sqrt()``.
    """
    _check_logits(logits, targets)
    q = _wrong(_probs(logits, targets, tau, target_tau), targets)
    return _mean_var(q)[1]


def inherent_variance(logits: torch.Tensor, targets: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """Inherent Variance (IV), ATS Table 1 and Eq. 3: ``v(q~)`` with ``q~ = SF(g; tau)``.

    The softmax is taken over the wrong-class logits ``g = [f_c]_{c != y}`` only,
    so it does not depend on the target logit (nor on an ATS tau1). Variance
    divided by (C - 1). Prop. 4.4: ``v(q) = (C - 1)^2 e(q)^2 v(q~)``.
    """
    _check_logits(logits, targets)
    _check_tau("tau", tau)
    g = _wrong(_float(logits), targets)
    return _mean_var(F.softmax(g / tau, dim=1))[1]


# ------------------------------------------------------------ ATKD (Sect. 2)


def adaptive_temperature(logits: torch.Tensor, std: str = "biased", eps: float = 0.0) -> torch.Tensor:
    """ATKD Eq. 10 adaptive temperature ``tau = Std(z)`` of each sample's logit vector.

    The paper reaches Std through Eq. 8-9: "The 1/K sum_j v_j^2 in the equation is
    the variance of logits, which can be represented by the square of the standard
    deviation" -- a 1/K (``std="biased"``, default) variance; ``"unbiased"`` divides
    by K - 1 (torch's default, used by the CVPR 2024 logit-standardisation code).
    ``eps`` is added to the variance before the square root (the authors' public
    code uses 1e-7 via ``layer_norm``; the paper has none). Table 13 reports the
    mean of this over a data set.
    """
    _check_logits(logits)
    if std not in STD_CHOICES:
        raise ValueError(f"std must be one of {STD_CHOICES}, got {std!r}")
    var = _float(logits).var(dim=1, correction=0 if std == "biased" else 1)
    return (var + eps).sqrt()


def _temperature(logits, tau, std):
    """A per-sample ``(N, 1)`` temperature from a number, an (N,) tensor or ``"adaptive"``."""
    if isinstance(tau, str):
        if tau != "adaptive":
            raise ValueError(f"temperature must be a number, an (N,) tensor or 'adaptive', got {tau!r}")
        return adaptive_temperature(logits, std=std)[:, None]
    if isinstance(tau, torch.Tensor):
        return _float(tau).reshape(-1, 1)
    _check_tau("tau", tau)
    return torch.tensor(float(tau), dtype=_float(logits).dtype, device=logits.device)


def sharpness(
    logits: torch.Tensor, tau: float | str | torch.Tensor = 1.0, std: str = "biased", center: bool = False
) -> torch.Tensor:
    """ATKD sharpness, Eq. 4 (tau = 1) and Eq. 1 with a temperature:

        S_sharpness = log sum_j exp(z_j / tau)

    the "realsoftmax" (log-sum-exp), a smooth maximum of the logits. ``tau`` is a
    number, a per-sample ``(N,)`` tensor, or ``"adaptive"`` for ``Std(z)`` (Eq. 10,
    with ``std`` as in :func:`adaptive_temperature`). Tables 2 and 7 use tau = 1.

    Unlike the softmax, log-sum-exp is not shift invariant: the paper's
    derivation (Eq. 7-9) assumes zero-mean logits and Table 12 finds their sums
    close to 0, but the definition uses the raw logits. ``center=True``
    subtracts each sample's mean first (the assumption made exact).
    """
    _check_logits(logits)
    z = _float(logits)
    t = _temperature(logits, tau, std)
    if center:
        z = z - z.mean(dim=1, keepdim=True)
    return torch.logsumexp(z / t, dim=1)


def sharpness_gap(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    teacher_tau: float | str | torch.Tensor = "adaptive",
    student_tau: float | str | torch.Tensor | None = None,
    std: str = "biased",
    center: bool = False,
) -> torch.Tensor:
    """ATKD sharpness gap, Eq. 1 / Eq. 6 / Eq. 15:

        G_gap = log sum_j exp(v_j / tau_T) - log sum_j exp(z_j / tau_S)

    teacher ``v`` minus student ``z`` (positive when the teacher is sharper).
    Eq. 6 uses one tau for both (vanilla KD, e.g. tau = 4 in Table 5); Eq. 15,
    for ATKD, uses the adaptive temperatures tau_T = Std(v), tau_S = Std(z) of
    Eq. 10 -- the default here (``"adaptive"``). ``student_tau=None`` means the
    same as ``teacher_tau`` (per-network Std when ``"adaptive"``). Tables 5, 8, 9
    and 11 report the data-set mean: pass tau=4 for their vanilla-KD rows and
    the fixed (tau_T, tau_S) pairs for Table 8.
    """
    _check_logits(student_logits)
    _check_logits(teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student and teacher logits differ in shape: {tuple(student_logits.shape)} "
            f"vs {tuple(teacher_logits.shape)}"
        )
    if student_tau is None:
        student_tau = teacher_tau
    return sharpness(teacher_logits, teacher_tau, std, center) - sharpness(student_logits, student_tau, std, center)


def loss_temperatures(loss: dict) -> tuple[float | str, float | str]:
    """(teacher tau, student tau) a run distils with, for its sharpness gap: a loss's ``tau`` (and
    ``student_tau``, else tau), ``"adaptive"`` for a loss without a fixed temperature (ATKD's
    Eq. 15: Tables 5 and 9 take tau 4 for vanilla KD and the adaptive Std for ATKD)."""
    teacher_tau = loss.get("tau", "adaptive")
    return teacher_tau, loss.get("student_tau") or teacher_tau


def entropy(logits: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """Entropy ``-sum_j p_j log p_j`` of ``p = softmax(z / tau)`` (nats).

    ATKD App. A.3 / Table 10 ("Logits Entropy", after Pereyra et al. 2017) with
    tau = 1; LS-KD App. H measures the smoothness of the teacher's targets at
    the distillation temperature the same way.
    """
    _check_logits(logits)
    _check_tau("tau", tau)
    log_p = F.log_softmax(_float(logits) / tau, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


def logit_sum(logits: torch.Tensor) -> torch.Tensor:
    """``sum_j z_j`` per sample, ATKD App. A.6 / Table 12 (Hinton's zero-mean assumption)."""
    _check_logits(logits)
    return _float(logits).sum(dim=1)
