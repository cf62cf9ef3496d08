"""Training losses of the reproduced papers, each a short function plus a registry.

Every loss is a terms function ``fn(z_s, z_t, y, *, **params) -> {name: tensor}``
with student logits ``z_s (N, C)``, teacher logits ``z_t (N, C)`` (already
computed, without grad; ``None`` for losses that need no teacher) and integer
targets ``y (N,)``; it returns its weighted terms (``{"ce": w_ce * CE, "kd": w_kd *
KD}``), and the loss is their sum (``kd_loss`` and the others: the same function
summed, ``fn(...) -> scalar``). Its keyword-only parameters, with their defaults,
are the loss's options, declared with their checks in benchmark/schema.py:
:func:`make_loss` checks them there (no torch needed) and records every resolved
value in ``loss.params``. A :class:`Loss` is a Method of benchmark/engine/methods (the
one registry). The math runs in float32 (or float64 when given), also under bf16
autocast.

Papers:
  ATS   Li et al., Asymmetric Temperature Scaling Makes Larger Networks Teach Well Again (NeurIPS 2022)
  ATKD  Reducing the Teacher-Student Gap via Adaptive Temperatures (ICLR 2022 submission)
  LS-KD Chandrasegaran et al., Revisiting Label Smoothing and Knowledge Distillation Compatibility (ICML 2022)
  KL-MSE Kim et al., Comparing Kullback-Leibler Divergence and Mean Squared Error Loss in KD (IJCAI 2021)
  Hinton et al., Distilling the Knowledge in a Neural Network (2015)
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Any, Callable

import torch
import torch.nn.functional as F

from benchmark.engine import methods
from benchmark.engine.analysis import adaptive_temperature, ats_probs
from benchmark.engine.precision import upcast
from benchmark.schema import ATKD_FORM_DEFAULTS, ATKD_FORM_FIXED  # noqa: F401  (the forms' defaults, re-exported)

__all__ = [
    "Loss",
    "make_loss",
    "loss_names",
    "loss_defaults",
    "ce_loss",
    "ls_loss",
    "kd_loss",
    "ats_loss",
    "atkd_loss",
    "mse_loss",
    "label_match_loss",
    "ce_terms",
    "ls_terms",
    "kd_terms",
    "ats_terms",
    "atkd_terms",
    "mse_terms",
    "label_match_terms",
]

# Allowed values of every string option: the functions' own guard for direct calls (make_loss
# checks the same choices declaratively in benchmark/schema.py).
CHOICES: dict[str, tuple[str, ...]] = {
    "reduction": ("batchmean", "mean", "sum"),
    "divergence": ("kl", "soft_ce"),
    "tau_scale": ("student", "teacher"),  # kd: whose temperature tau_squared squares
    "atkd_tau_scale": ("none", "base", "student"),
    "ats_tau_scale": ("student", "tau1", "tau2"),  # ats: which temperature tau_squared squares
    "std": ("biased", "unbiased"),
    "ce_on": ("raw", "normalized"),
    "form": ("paper", "code2020", "code2023"),  # atkd: which equation (see atkd_loss)
}

# The options each ATKD code form fixes, and the defaults it fills in (see atkd_loss), are declared
# with every other option's default in benchmark/schema.py.


def _choice(option: str, value: str, key: str | None = None) -> None:
    allowed = CHOICES[key or option]
    if value not in allowed:
        raise ValueError(f"{option} must be one of {allowed}, got {value!r}")


def _positive(option: str, value: float, allow_inf: bool = False) -> None:
    if not value > 0 or (value == math.inf and not allow_inf):
        raise ValueError(f"{option} must be {'> 0' if allow_inf else 'finite and > 0'}, got {value!r}")


def _inputs(z_s, z_t, y, needs_teacher=True):
    """Checks shapes; returns the logits in float32 (float64 kept), the teacher detached."""
    if z_s.dim() != 2:
        raise ValueError(f"student logits must be (N, C), got shape {tuple(z_s.shape)}")
    if y is None or tuple(y.shape) != (z_s.shape[0],):
        raise ValueError(f"targets must be (N,) = ({z_s.shape[0]},), got {None if y is None else tuple(y.shape)}")
    if needs_teacher:
        if z_t is None:
            raise ValueError("this loss needs teacher logits, got None")
        if z_t.shape != z_s.shape:
            raise ValueError(f"teacher logits {tuple(z_t.shape)} differ from student logits {tuple(z_s.shape)}")
    # The teacher is a fixed target: no gradient may reach it even if its logits carry one.
    return upcast(z_s), (None if z_t is None else upcast(z_t).detach()), y.long()


def _reduce(per_sample: torch.Tensor, num_classes: int, reduction: str) -> torch.Tensor:
    """Per-sample sums over classes -> scalar; "mean" is torch's elementwise mean over N*C."""
    _choice("reduction", reduction)
    if reduction == "batchmean":
        return per_sample.mean()
    if reduction == "mean":
        return per_sample.sum() / (per_sample.numel() * num_classes)
    return per_sample.sum()


def _divergence(log_p_t: torch.Tensor, log_p_s: torch.Tensor, divergence: str) -> torch.Tensor:
    """Per-sample ``sum_c p_t (log p_t - log p_s)`` ("kl") or ``-sum_c p_t log p_s`` ("soft_ce").

    The two have the same gradient w.r.t. the student and differ by the
    teacher's entropy, a constant that still shows in reported loss values.
    """
    _choice("divergence", divergence)
    p_t = log_p_t.exp()
    if divergence == "kl":
        # log_p_t from log_softmax stays finite where p_t underflows, so 0 * log 0 -> 0.
        return (p_t * (log_p_t - log_p_s)).sum(dim=1)
    return -(p_t * log_p_s).sum(dim=1)


def _soft_divergence(z_s: torch.Tensor, z_t: torch.Tensor, tau: float, student_tau: float,
                     divergence: str = "kl") -> torch.Tensor:
    """Per-sample divergence of the student's tempered distribution from the teacher's: the KD
    term of ``kd_loss`` and of the feature distillers (``kd_term``)."""
    return _divergence(F.log_softmax(z_t / tau, dim=1), F.log_softmax(z_s / student_tau, dim=1), divergence)


def kd_term(z_s: torch.Tensor, z_t: torch.Tensor, tau: float) -> torch.Tensor:
    """RepDistiller's DistillKL (the feature distillers' KD term): ``tau^2 * sum_c p_t log(p_t / p_s)``,
    mean over the batch. tau^2 multiplies the batch mean here and each sample in ``kd_loss``: the
    two orders round differently, and each keeps its own so that no result moves."""
    return _soft_divergence(upcast(z_s), upcast(z_t), tau, tau).mean() * tau**2


def _weighted_terms(ce: torch.Tensor, kd: torch.Tensor, name: str = "kd") -> dict[str, torch.Tensor]:
    """The terms "ce" and ``name`` (both already weighted); their sum is ``ce + kd``."""
    return {"ce": ce, name: kd}


# ------------------------------------------------------------------ losses


def ce_terms(z_s: torch.Tensor, z_t: torch.Tensor | None, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Cross-entropy ``-log p_y(1)``, mean over the batch (the CE / NoKD baseline)."""
    z_s, _, y = _inputs(z_s, z_t, y, needs_teacher=False)
    return {"ce": F.cross_entropy(z_s, y)}


def ls_terms(z_s: torch.Tensor, z_t: torch.Tensor | None, y: torch.Tensor, *,
             alpha: float = 0.1) -> dict[str, torch.Tensor]:
    """Label smoothing (Szegedy et al. 2016), as LS-KD Sect. 2 trains its teachers:

        cross-entropy against y_LS = (1 - alpha) * onehot(y) + alpha / K
        = (1 - alpha) * (-log p_y) + alpha * mean_k(-log p_k),   mean over the batch.

    Default alpha = 0.1: LS-KD's teachers use alpha in {0.0, 0.1} (Table 2 columns).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    z_s, _, y = _inputs(z_s, z_t, y, needs_teacher=False)
    log_p = F.log_softmax(z_s, dim=1)
    nll = -log_p.gather(1, y[:, None]).squeeze(1)
    uniform = -log_p.mean(dim=1)
    return {"ls": ((1.0 - alpha) * nll + alpha * uniform).mean()}


def _kd_inf(z_s: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
    """Per-sample ``lim_{tau->inf} tau^2 KL(p_t(tau) || p_s(tau)) = (1/2K) ||d - mean(d)||^2``.

    KL-MSE slides ("Extension from KL loss to MSE loss"): with d = z_s - z_t,
    lim tau^2 KL = (1/2K) ||d||^2 - (1/2K^2) (sum_j d_j)^2 (+ a constant the
    second-order expansion shows to be 0), and its gradient is
    (1/K) d_k - (1/K^2) sum_j d_j -- exactly the gradient of this function.
    """
    d = z_s - z_t
    k = d.shape[1]
    return ((d - d.mean(dim=1, keepdim=True)) ** 2).sum(dim=1) / (2 * k)


def kd_terms(
    z_s: torch.Tensor,
    z_t: torch.Tensor,
    y: torch.Tensor,
    *,
    tau: float = 4.0,
    student_tau: float | None = None,
    ce_weight: float = 0.1,
    kd_weight: float = 0.9,
    tau_squared: bool = True,
    tau_scale: str = "student",
    reduction: str = "batchmean",
    divergence: str = "kl",
) -> dict[str, torch.Tensor]:
    """Hinton KD; ATS Eq. 1, ATKD Eq. 2-3, KL-MSE slide "Degree of softness":

        L = ce_weight * CE(p_s(1), y) + kd_weight * tau^2 * KL(p_t(tau) || p_s(student_tau))

    p(tau) = softmax(z / tau). Defaults: tau = 4 and weights 0.9 KD / 0.1 CE, the
    setting ATKD Sect. 2.1 calls standard ("The popular choice of the temperature
    tau is in {3, 4, 5} and the weight lambda = 0.9 (Hinton et al., 2015; Cho &
    Hariharan, 2019; Tian et al., 2020)") and uses for its vanilla-KD rows
    (Sect. 3: "Temperature is 4 for vanilla KD, and the weight of ATKD or KD and
    cross-entropy is 0.9 and 0.1"). LS-KD and KL-MSE train with the KD term
    only (ce_weight=0, kd_weight=1); ATS uses 0.5 / 0.5: manifests set these.

    Options:
      student_tau  None = tau. ATS C.3 also runs the student at 1.0.
      tau_squared  multiply the KD term by a temperature squared (Hinton's
                   gradient-scale correction; ATS Table 8's "+/-").
      tau_scale    which temperature is squared when student_tau != tau: Eq. 1
                   of ATS has one tau; the ATS authors' code squares the
                   student's ("student", default; keeps ``ats`` with
                   tau1 == tau2 equal to this loss), "teacher" squares tau.
      reduction    "batchmean" (sum over classes, mean over batch, as
                   KLDivLoss(reduction='batchmean')), "mean" (mean over batch
                   and classes, as KLDivLoss(reduction='mean')), "sum".
      divergence   "kl" (Hinton, KL-MSE) or "soft_ce" = -sum p_t log p_s (ATS
                   Eq. 1, ATKD Eq. 2): same gradient, value larger by the
                   teacher's entropy.

    ``tau = inf`` is KL-MSE's tau -> infinity limit, not a large finite tau: the
    KD term becomes (1/2K) ||d - mean(d)||^2 per sample, d = z_s - z_t, whose
    gradient is the slides' (1/K)(z_s - z_t) - (1/K^2) sum_j (z_s - z_t)_j
    (see ``_kd_inf``). It needs student_tau = inf (or None), tau_squared=True
    (without tau^2 the limit is 0) and divergence="kl" (tau^2 times the
    teacher entropy diverges). The KL-MSE public code (jhoon-oh/kd_data,
    tools/losses.py ``inf_grad``) backpropagates this per-sample gradient
    divided by the batch size (since its commit of 2020-10-02), i.e. the
    gradient of "batchmean", the reduction of its finite-tau KD too;
    "sum" would be B times larger.
    """
    _positive("tau", tau, allow_inf=True)
    student_tau = tau if student_tau is None else student_tau
    _positive("student_tau", student_tau, allow_inf=True)
    _choice("tau_scale", tau_scale)
    _choice("divergence", divergence)
    z_s, z_t, y = _inputs(z_s, z_t, y)

    if math.inf in (tau, student_tau):
        if tau != student_tau:
            raise ValueError(f"tau=inf needs student_tau=inf (or None), got tau={tau}, student_tau={student_tau}")
        if not tau_squared or divergence != "kl":
            raise ValueError("tau=inf is the limit of tau^2 * KL: it needs tau_squared=True and divergence='kl'")
        per_sample = _kd_inf(z_s, z_t)
    else:
        per_sample = _soft_divergence(z_s, z_t, tau, student_tau, divergence)
        if tau_squared:
            per_sample = per_sample * (student_tau if tau_scale == "student" else tau) ** 2
    kd = _reduce(per_sample, z_s.shape[1], reduction)
    return _weighted_terms(ce_weight * F.cross_entropy(z_s, y), kd_weight * kd)


def ats_terms(
    z_s: torch.Tensor,
    z_t: torch.Tensor,
    y: torch.Tensor,
    *,
    tau1: float = 4.0,
    tau2: float = 2.0,
    student_tau: float = 1.0,
    ce_weight: float = 0.5,
    kd_weight: float = 0.5,
    tau_squared: bool = True,
    tau_scale: str = "student",
    reduction: str = "batchmean",
    divergence: str = "soft_ce",
) -> dict[str, torch.Tensor]:
    """KD with asymmetric temperature scaling, ATS Eq. 1 with the teacher of Eq. 5:

        L = (1 - lambda) CE(p_s(1), y) - lambda * tau_s^2 * sum_c p_t,c(tau1, tau2) log p_s,c(tau_s)

    p_t(tau1, tau2): the target logit divided by tau1, the others by tau2, one
    softmax (:func:`benchmark.engine.analysis.ats_probs`). Defaults from the paper:
    lambda = 0.5 ("We set lambda = 0.5 by default", App. C.3), student
    temperature 1.0 ("For our method, we keep the student's temperature as 1.0
    by default"), soft-CE form (Eq. 1). (tau1, tau2) is searched in {(2,1),
    (3,1), (3,2), (4,2), (4,3), (5,2)}; the default (4, 2) is in that grid,
    matches Sect. 5's advice "tau2 in [tau1 - 2, tau1 - 1]" and Fig. 1's example.
    tau_squared multiplies the KD term by a temperature squared, the one tau_scale
    names: "student" = student_tau^2 (the authors' code: ``s_tau * s_tau`` in
    distill.py; = 1 by default), "tau1" = tau1^2 or "tau2" = tau2^2 (the teacher's
    target-class or other-class temperature: the readings of Table 8's "+" columns,
    where the factor cannot be the student's, since "+" and "-" differ there). With
    tau1 == tau2 == tau this is :func:`kd_loss` with that tau, the same student_tau
    and tau_scale="student" (or "teacher" for "tau1"/"tau2"): the paper's TS baseline.
    """
    _positive("tau1", tau1)
    _positive("tau2", tau2)
    _positive("student_tau", student_tau)
    _choice("tau_scale", tau_scale, key="ats_tau_scale")
    z_s, z_t, y = _inputs(z_s, z_t, y)
    log_p_t = ats_probs(z_t, y, tau1, tau2, log=True)
    log_p_s = F.log_softmax(z_s / student_tau, dim=1)
    per_sample = _divergence(log_p_t, log_p_s, divergence)
    if tau_squared:
        per_sample = per_sample * {"student": student_tau, "tau1": tau1, "tau2": tau2}[tau_scale] ** 2
    kd = _reduce(per_sample, z_s.shape[1], reduction)
    return _weighted_terms(ce_weight * F.cross_entropy(z_s, y), kd_weight * kd)


def atkd_terms(
    z_s: torch.Tensor,
    z_t: torch.Tensor,
    y: torch.Tensor,
    *,
    ce_weight: float = 0.1,
    kd_weight: float = 0.9,
    std: str = "biased",
    eps: float = 0.0,
    multiplier: float = 1.0,
    base_tau: float = 1.0,
    tau_scale: str = "none",
    ce_on: str = "raw",
    detach_stats: bool = False,
    reduction: str = "batchmean",
    divergence: str = "soft_ce",
    form: str = "paper",
) -> dict[str, torch.Tensor]:
    """Adaptive Temperature KD, ATKD Eq. 10 (``form="paper"``, default):

        tau_i^T = Std(v_i),  tau_i^S = Std(z_i)
        L_ATKD = -sum p^T log p^S,  p^S = softmax(z_i / tau_i^S),  p^T = softmax(v_i / tau_i^T)
        L = lambda L_ATKD + (1 - lambda) L_cls,   lambda = 0.9

    per sample i, over its own logit vector ("we set the temperature of the
    teacher and the student as the standard deviation of the logits vector
    respectively"; "the weight of ATKD or KD and cross-entropy is 0.9 and 0.1",
    Sect. 3). The defaults are that text: Std with 1/K (Eq. 9 calls
    (1/K) sum_j v_j^2 "the variance of logits"), no eps, no multiplier, no
    tau^2 factor, soft-CE form, CE on the raw logits, gradients through Std(z).

    Options of the paper form (generalisations, for sensitivity runs):
      std          "biased" (1/K) or "unbiased" (1/(K-1), torch.std; CVPR 2024
                   logit standardisation).
      eps          added to the variance before the square root.
      multiplier, base_tau
                   effective temperature tau = base_tau * sqrt(var + eps) / multiplier.
      tau_scale    "none" (Eq. 10), "base" multiplies the KD term by base_tau^2,
                   "student" by each sample's sqrt(var_s + eps)^2. The factor is
                   a constant weight, never differentiated.
      ce_on        "raw": CE on z; "normalized": CE on z * multiplier / sqrt(var + eps).
      detach_stats treat the student's Std as a constant. The teacher's never has grad.
    ``tau_scale="student"`` and ``detach_stats`` are this suite's own variants: no
    commit of the authors' skd_main.py (forjiuzhou/Spherical-Knowledge-Distillation,
    all 48 commits of branches main and dali, 2020-12-21 to 2023-08-18) squares the
    student's Std or computes it without gradient (its only ``torch.no_grad()`` in
    ``train_kd`` wraps the teacher's forward, v1 skd_main.py:450), and the paper has
    neither. They came with this suite's first losses (commit 35f2adf) without a
    source; kept as sensitivity options, credited to no one.

    ``form`` names the authors' public code (forjiuzhou/Spherical-Knowledge-Distillation,
    skd_main.py, function train_kd); both fix some options (ATKD_FORM_FIXED: a
    contradicting value is an error) and make_loss fills the rest from ATKD_FORM_DEFAULTS:
      "code2020"   tag v1 = commit de66b19 (2020-12-21), skd_main.py:453-464, the
                   Spherical KD code that released the 73.01 % ResNet-18:
                       z' = m (z - mean z) / sqrt(Var_1/K(z) + eps),  v' likewise (F.layer_norm)
                       L = (1-a) CE(z', y) + a T^2 KL(softmax(v'/T) || softmax(z'/T))
                   with m = multiplier, T = base_tau, eps = 1e-7, KLDivLoss batchmean.
                   It is the paper form with std biased, tau_scale base, ce_on
                   normalized (the mean subtraction changes no softmax), which is how
                   it is computed here; tests check it against F.layer_norm to 1e-12.
      "code2023"   branch main, commit 1c73fc0 (2023-08-17), skd_main.py:460-467
                   (after the paper): the student's logits are rescaled to the
                   teacher's spread, the teacher's are left as they are:
                       s_i = Std(v_i) / Std(z_i)   (torch.std: 1/(K-1), no eps, grad through Std(z_i))
                       L = (1-a) CE(s_i z_i, y) + a T^2 KL(softmax(v_i/T) || softmax(s_i z_i/T))
                   The code's reduction, sum over an (N, N) broadcast of the per-sample
                   KL times T^2 divided by N twice, is the batch mean (line 464).
                   Not offered: branch dali (0556b36, skd_main.py:597-605) rescales the
                   already rescaled logits once more, softmax(s_i^2 z_i / T) (a bug
                   introduced by b42dc33).
    Subtracting the mean, as the code's layer_norm does, is not an option: the
    softmax and CE are shift invariant, so it changes nothing here.
    A positive affine change a*v + b of the teacher logits leaves the default
    loss unchanged (exactly when eps = 0). With eps = 0 a sample whose logits
    are all equal (Std 0, e.g. a zero-initialised classifier) gives NaN: set
    eps > 0 for such models.
    """
    _choice("std", std)
    _choice("tau_scale", tau_scale, key="atkd_tau_scale")
    _choice("ce_on", ce_on)
    _choice("form", form)
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps!r}")
    _positive("multiplier", multiplier)
    _positive("base_tau", base_tau)
    given = {"std": std, "eps": eps, "multiplier": multiplier, "tau_scale": tau_scale, "ce_on": ce_on,
             "detach_stats": detach_stats}
    for option, fixed in ATKD_FORM_FIXED.get(form, {}).items():
        if given[option] != fixed:
            raise ValueError(f"form {form!r} computes {option}={fixed!r} (the authors' code); got {given[option]!r}")
    z_s, z_t, y = _inputs(z_s, z_t, y)

    std_t = adaptive_temperature(z_t, std=std, eps=eps)[:, None]
    std_s = adaptive_temperature(z_s, std=std, eps=eps)[:, None]
    if detach_stats:
        std_s = std_s.detach()
    if form == "code2023":
        rescaled = z_s * (std_t / std_s)
        log_p_t = F.log_softmax(z_t / base_tau, dim=1)
        log_p_s = F.log_softmax(rescaled / base_tau, dim=1)
        kd = _reduce(_divergence(log_p_t, log_p_s, divergence) * base_tau**2, z_s.shape[1], reduction)
        return _weighted_terms(ce_weight * F.cross_entropy(rescaled, y), kd_weight * kd)
    log_p_t = F.log_softmax(z_t * multiplier / (std_t * base_tau), dim=1)
    log_p_s = F.log_softmax(z_s * multiplier / (std_s * base_tau), dim=1)
    per_sample = _divergence(log_p_t, log_p_s, divergence)
    if tau_scale == "base":
        per_sample = per_sample * base_tau**2
    elif tau_scale == "student":
        per_sample = per_sample * std_s.detach().squeeze(1) ** 2
    kd = _reduce(per_sample, z_s.shape[1], reduction)
    ce_logits = z_s if ce_on == "raw" else z_s * multiplier / std_s
    return _weighted_terms(ce_weight * F.cross_entropy(ce_logits, y), kd_weight * kd)


def mse_terms(
    z_s: torch.Tensor,
    z_t: torch.Tensor,
    y: torch.Tensor,
    *,
    reduction: str = "mean",
    ce_weight: float = 0.0,
    kd_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Logit matching, KL-MSE slides: ``L_MSE = ||z_s - z_t||_2^2``.

    Defaults follow the KL-MSE public code: ``F.mse_loss`` (reduction "mean",
    over batch and classes) and no CE term ("L_MSE" is the whole student loss in
    the tables). "batchmean" sums over classes and averages over the batch (the
    slides' ||.||^2 per sample); "sum" sums everything.
    """
    z_s, z_t, y = _inputs(z_s, z_t, y)
    per_sample = ((z_s - z_t) ** 2).sum(dim=1)
    kd = _reduce(per_sample, z_s.shape[1], reduction)
    return _weighted_terms(ce_weight * F.cross_entropy(z_s, y), kd_weight * kd, name="mse")


def label_match_terms(
    z_s: torch.Tensor,
    z_t: torch.Tensor,
    y: torch.Tensor,
    *,
    reduction: str = "batchmean",
    ce_weight: float = 0.0,
    kd_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Label matching, KL-MSE's tau -> 0 limit of the KL loss (slides "Changes on tau")::

        lim_{tau->0} (1/tau) dL_KL/dz_s,k = 1[argmax_j z_s,j = k] - 1[argmax_j z_t,j = k]

    The loss with that gradient, per sample, is ``L = max_j z_s,j - z_s,a`` with ``a = argmax_j
    z_t,j`` (it is ``lim_{tau->0} L_KL(tau) / tau``: the soft labels become the arg-maxes, and 0
    when the student's top class is the teacher's). The authors' code has this gradient as
    ``ze_grad`` (jhoon-oh/kd_data tools/losses.py:96-105: summed over the batch, never called by
    its training loop); "batchmean" averages it over the batch as their ``inf_grad`` does
    (tools/losses.py:94), "sum" is ``ze_grad`` as written. No CE term by default, as for L_KL.
    """
    z_s, z_t, y = _inputs(z_s, z_t, y)
    top_t = z_t.argmax(dim=1, keepdim=True)
    per_sample = z_s.max(dim=1).values - z_s.gather(1, top_t).squeeze(1)
    kd = _reduce(per_sample, z_s.shape[1], reduction)
    return _weighted_terms(ce_weight * F.cross_entropy(z_s, y), kd_weight * kd, name="label_match")


# ---------------------------------------------------------------- the summed losses


def _summed(terms_fn: Callable[..., dict]) -> Callable[..., torch.Tensor]:
    """``terms_fn`` with its terms summed: ``fn(z_s, z_t, y, **params) -> scalar``."""
    @functools.wraps(terms_fn)
    def loss(*args, **kwargs):
        return methods.total(terms_fn(*args, **kwargs))

    loss.__name__ = loss.__qualname__ = terms_fn.__name__.replace("_terms", "_loss")
    return loss


ce_loss, ls_loss, kd_loss = _summed(ce_terms), _summed(ls_terms), _summed(kd_terms)
ats_loss, atkd_loss, mse_loss = _summed(ats_terms), _summed(atkd_terms), _summed(mse_terms)
label_match_loss = _summed(label_match_terms)


# ---------------------------------------------------------------- the Method


def loss_names() -> list[str]:
    """Names accepted by :func:`make_loss`: the registered methods without feature taps."""
    return methods.names(taps=False)


def _entry(name: str) -> methods.Entry:
    e = methods.entry(name)
    if e.taps:
        raise ValueError(f"{name!r} is a feature-based method (it needs the networks): not a logit loss")
    return e


def loss_defaults(name: str) -> dict[str, Any]:
    """Parameter name -> default value of loss ``name`` (its terms function's keyword-only
    arguments; ``epoch`` is the step's, not an option). tests/test_config.py checks that these are
    the defaults declared in benchmark/schema.py."""
    fn = methods.load(_entry(name).code)
    return {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "epoch"
    }


class Loss:
    """A configured logit loss, a Method (benchmark/engine/methods): ``loss(student_logits,
    teacher_logits, targets) -> scalar``, ``loss.loss_terms(step) -> {name: tensor}``.

    ``name``, ``params`` (every option with its resolved value) and ``needs_teacher`` are what a
    results record stores. It has no taps, adapters, stages or per-epoch state: a loss whose
    function takes ``epoch`` (a warm-up) reads it from the step."""

    taps = False
    needs_index = False
    adapters = None

    def __init__(self, name: str, fn: Callable[..., dict], params: dict[str, Any], needs_teacher: bool):
        self.name, self.fn, self.params, self.needs_teacher = name, fn, params, needs_teacher
        self.takes_epoch = "epoch" in inspect.signature(fn).parameters

    def loss_terms(self, step: methods.Step) -> dict[str, torch.Tensor]:
        epoch = {"epoch": step.epoch} if self.takes_epoch else {}
        return self.fn(step.student_logits, step.teacher_logits, step.targets, **self.params, **epoch)

    def __call__(self, student_logits, teacher_logits, targets) -> torch.Tensor:
        return methods.total(self.loss_terms(methods.Step(student_logits, teacher_logits, targets)))

    def terms(self, student_logits, teacher_logits, targets) -> dict[str, torch.Tensor]:
        """The loss's weighted terms (e.g. ``{"ce": w_ce * CE, "kd": w_kd * KD}``, detached)
        plus ``"total"``, the value ``self(...)`` returns (with its graph, bit-identical to it)."""
        parts = self.loss_terms(methods.Step(student_logits, teacher_logits, targets))
        return {**{k: v.detach() for k, v in parts.items()}, "total": methods.total(parts)}

    # The rest of the protocol: nothing to do for a loss.
    def train(self, mode: bool = True) -> Loss:  # noqa: ARG002 (the Method protocol's train)
        return self

    def start_epoch(self, epoch: int, epochs: int) -> None:
        pass

    def pretrain_stages(self, student) -> list:  # noqa: ARG002 (the Method protocol's pretrain_stages)
        return []

    def attach(self, student) -> None:
        pass

    def attach_teacher(self, teacher) -> None:
        pass

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Loss({self.name!r}{', ' if args else ''}{args})"


def build_method(entry: methods.Entry, name: str, fn: Callable[..., dict], params: dict[str, Any]) -> Loss:
    """The registry's builder of a logit loss (benchmark/engine/methods): ``params`` already resolved."""
    return Loss(name, fn, params, entry.needs_teacher)


def make_loss(name: str, **params: Any) -> Loss:
    """The loss ``name`` with ``params`` over its defaults; ValueError on unknown names or bad values
    (checked declaratively: benchmark/schema.py, no tensor is computed)."""
    _entry(name)
    return methods.build(name, params)
