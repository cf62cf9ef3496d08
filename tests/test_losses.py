"""Losses against hand-written float64 formulas (plain Python loops), plus the registry."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmark.engine.losses import (
    atkd_loss,
    ats_loss,
    ce_loss,
    kd_loss,
    loss_defaults,
    loss_names,
    ls_loss,
    make_loss,
    mse_loss,
)
from tests.test_dkd import ref_dkd
from tests.test_ils import eq2_terms

N, C = 4, 5


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    z_s = torch.randn(N, C, generator=g, dtype=torch.float64) * 2.0 + 0.3
    z_t = torch.randn(N, C, generator=g, dtype=torch.float64) * 4.0 - 1.0
    y = torch.tensor([0, 3, 4, 1])
    return z_s, z_t, y


# ---- reference formulas ---------------------------------------------------


def softmax_row(row, taus):
    if not isinstance(taus, list):
        taus = [taus] * len(row)
    ex = [math.exp(f / t) for f, t in zip(row, taus)]
    s = sum(ex)
    return [e / s for e in ex]


def ref_ce(z_s, y):
    return mean([-math.log(softmax_row(r, 1.0)[t]) for r, t in zip(z_s.tolist(), y.tolist())])


def mean(xs):
    return sum(xs) / len(xs)


def std_row(r, ddof=0):
    m = mean(r)
    return math.sqrt(sum((x - m) ** 2 for x in r) / (len(r) - ddof))


def ref_soft(p_t, p_s, divergence):
    """Per-sample KL(p_t || p_s) or soft cross-entropy."""
    if divergence == "kl":
        return sum(a * math.log(a / b) for a, b in zip(p_t, p_s))
    return -sum(a * math.log(b) for a, b in zip(p_t, p_s))


def ref_kd(z_s, z_t, y, tau, s_tau, scale, divergence="kl", ce_w=0.1, kd_w=0.9, per="batchmean"):
    terms = [
        scale * ref_soft(softmax_row(t, tau), softmax_row(s, s_tau), divergence)
        for s, t in zip(z_s.tolist(), z_t.tolist())
    ]
    kd = {"batchmean": sum(terms) / N, "mean": sum(terms) / (N * C), "sum": sum(terms)}[per]
    return ce_w * ref_ce(z_s, y) + kd_w * kd


def value(t):
    return t.item()


# ---- ce / ls ----------------------------------------------------------------


def test_ce(data):
    z_s, _, y = data
    assert value(ce_loss(z_s, None, y)) == pytest.approx(ref_ce(z_s, y), rel=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.4])
def test_label_smoothing(data, alpha):
    z_s, _, y = data
    want = []
    for r, t in zip(z_s.tolist(), y.tolist()):
        p = softmax_row(r, 1.0)
        smoothed = [(1 - alpha) * (c == t) + alpha / C for c in range(C)]
        want.append(-sum(q * math.log(pc) for q, pc in zip(smoothed, p)))
    assert value(ls_loss(z_s, None, y, alpha=alpha)) == pytest.approx(mean(want), rel=1e-12)


# ---- kd -------------------------------------------------------------------------


def test_kd_default_is_hinton_tau4_09_01(data):
    z_s, z_t, y = data
    want = ref_kd(z_s, z_t, y, tau=4.0, s_tau=4.0, scale=16.0)
    assert value(kd_loss(z_s, z_t, y)) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("reduction", ["batchmean", "mean", "sum"])
@pytest.mark.parametrize("divergence", ["kl", "soft_ce"])
def test_kd_reductions_and_divergences(data, reduction, divergence):
    z_s, z_t, y = data
    got = kd_loss(z_s, z_t, y, tau=2.0, ce_weight=0.0, kd_weight=1.0, reduction=reduction, divergence=divergence)
    want = ref_kd(z_s, z_t, y, 2.0, 2.0, 4.0, divergence, ce_w=0.0, kd_w=1.0, per=reduction)
    assert value(got) == pytest.approx(want, rel=1e-12)


def test_kd_soft_ce_exceeds_kl_by_teacher_entropy(data):
    z_s, z_t, y = data
    kw = dict(tau=3.0, ce_weight=0.0, kd_weight=1.0)
    gap = value(kd_loss(z_s, z_t, y, divergence="soft_ce", **kw) - kd_loss(z_s, z_t, y, divergence="kl", **kw))
    entropy = mean([-sum(p * math.log(p) for p in softmax_row(t, 3.0)) for t in z_t.tolist()])
    assert gap == pytest.approx(9.0 * entropy, rel=1e-12)
    # ... and the same gradient
    grads = []
    for div in ("kl", "soft_ce"):
        zs = z_s.clone().requires_grad_()
        kd_loss(zs, z_t, y, divergence=div, **kw).backward()
        grads.append(zs.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_kd_student_temperature_and_tau_scale(data):
    z_s, z_t, y = data
    for scale_name, scale in (("student", 1.0), ("teacher", 16.0)):
        got = kd_loss(z_s, z_t, y, tau=4.0, student_tau=1.0, tau_scale=scale_name)
        assert value(got) == pytest.approx(ref_kd(z_s, z_t, y, 4.0, 1.0, scale), rel=1e-12)
    got = kd_loss(z_s, z_t, y, tau=4.0, tau_squared=False)
    assert value(got) == pytest.approx(ref_kd(z_s, z_t, y, 4.0, 4.0, 1.0), rel=1e-12)


def test_kd_gradient_formula(data):
    # d/dz_s [kd_w * tau_s^2 * KL(p_t || p_s(tau_s)) / N] = kd_w * tau_s * (p_s - p_t) / N
    z_s, z_t, y = data
    zs = z_s.clone().requires_grad_()
    kd_loss(zs, z_t, y, tau=3.0, ce_weight=0.0, kd_weight=0.7).backward()
    want = np.zeros((N, C))
    for i, (s, t) in enumerate(zip(z_s.tolist(), z_t.tolist())):
        p_s, p_t = softmax_row(s, 3.0), softmax_row(t, 3.0)
        for c in range(C):
            want[i, c] = 0.7 * 3.0 * (p_s[c] - p_t[c]) / N
    np.testing.assert_allclose(zs.grad.numpy(), want, rtol=1e-10, atol=1e-15)


def ref_inf_value(z_s, z_t):
    vals = []
    for s, t in zip(z_s.tolist(), z_t.tolist()):
        d = [a - b for a, b in zip(s, t)]
        # KL-MSE slides: (1/2K)||d||^2 - (1/2K^2)(sum_j d_j)^2
        vals.append(sum(x * x for x in d) / (2 * C) - sum(d) ** 2 / (2 * C * C))
    return mean(vals)


def ref_inf_grad(z_s, z_t):
    g = np.zeros((N, C))
    for i, (s, t) in enumerate(zip(z_s.tolist(), z_t.tolist())):
        d = [a - b for a, b in zip(s, t)]
        for k in range(C):
            g[i, k] = (d[k] / C - sum(d) / C**2) / N  # batchmean divides by N
    return g


def test_kd_tau_inf_value_and_gradient(data):
    z_s, z_t, y = data
    zs = z_s.clone().requires_grad_()
    loss = kd_loss(zs, z_t, y, tau=math.inf, ce_weight=0.0, kd_weight=1.0)
    loss.backward()
    assert value(loss) == pytest.approx(ref_inf_value(z_s, z_t), rel=1e-12)
    np.testing.assert_allclose(zs.grad.numpy(), ref_inf_grad(z_s, z_t), rtol=1e-12, atol=1e-15)
    # weights and CE still apply at tau = inf
    got = kd_loss(z_s, z_t, y, tau=math.inf)
    assert value(got) == pytest.approx(0.9 * ref_inf_value(z_s, z_t) + 0.1 * ref_ce(z_s, y), rel=1e-12)


def test_kd_large_finite_tau_approaches_the_inf_surrogate(data):
    z_s, z_t, y = data

    def grad_and_value(tau):
        zs = z_s.clone().requires_grad_()
        loss = kd_loss(zs, z_t, y, tau=tau, ce_weight=0.0, kd_weight=1.0)
        loss.backward()
        return zs.grad.numpy(), value(loss)

    g_inf, v_inf = grad_and_value(math.inf)
    errors = []
    for tau in (1e2, 1e3, 1e4):
        g, v = grad_and_value(tau)
        errors.append(np.abs(g - g_inf).max())
        assert v == pytest.approx(v_inf, rel=10.0 / tau)
    # O(1/tau) convergence: each factor of 10 in tau cuts the gap about tenfold
    assert errors[2] < 1e-3 * np.abs(g_inf).max()
    assert errors[1] / errors[2] > 5 and errors[0] / errors[1] > 5
    # ... and a moderate tau is far from the limit (the test can fail)
    g4, _ = grad_and_value(4.0)
    assert np.abs(g4 - g_inf).max() > 0.05 * np.abs(g_inf).max()


def test_kd_tau_inf_is_not_plain_mse(data):
    # the (sum d)^2 term: shifting the student's logits changes MSE but not the limit
    z_s, z_t, y = data
    a = kd_loss(z_s, z_t, y, tau=math.inf, ce_weight=0.0, kd_weight=1.0)
    b = kd_loss(z_s + 3.0, z_t, y, tau=math.inf, ce_weight=0.0, kd_weight=1.0)
    assert value(a) == pytest.approx(value(b), rel=1e-12)
    assert value(mse_loss(z_s, z_t, y)) != pytest.approx(value(mse_loss(z_s + 3.0, z_t, y)))


def test_kd_tau_inf_rejects_meaningless_combinations(data):
    z_s, z_t, y = data
    for kw in (
        dict(divergence="soft_ce"),
        dict(tau_squared=False),
        dict(student_tau=1.0),
    ):
        with pytest.raises(ValueError):
            kd_loss(z_s, z_t, y, tau=math.inf, **kw)


# ---- ats --------------------------------------------------------------------


def ref_ats(z_s, z_t, y, tau1, tau2, s_tau, tau_sq=True, divergence="soft_ce", lam=0.5):
    terms = []
    for s, t, c in zip(z_s.tolist(), z_t.tolist(), y.tolist()):
        taus = [tau2] * C
        taus[c] = tau1
        terms.append(ref_soft(softmax_row(t, taus), softmax_row(s, s_tau), divergence))
    scale = s_tau**2 if tau_sq else 1.0
    return (1 - lam) * ref_ce(z_s, y) + lam * scale * mean(terms)


def test_ats_default_value(data):
    z_s, z_t, y = data
    assert value(ats_loss(z_s, z_t, y)) == pytest.approx(ref_ats(z_s, z_t, y, 4.0, 2.0, 1.0), rel=1e-12)


@pytest.mark.parametrize("tau1,tau2,s_tau", [(3.0, 1.0, 1.0), (5.0, 2.0, 2.0)])
@pytest.mark.parametrize("divergence", ["soft_ce", "kl"])
def test_ats_value_options(data, tau1, tau2, s_tau, divergence):
    z_s, z_t, y = data
    got = ats_loss(z_s, z_t, y, tau1=tau1, tau2=tau2, student_tau=s_tau, divergence=divergence)
    assert value(got) == pytest.approx(ref_ats(z_s, z_t, y, tau1, tau2, s_tau, True, divergence), rel=1e-12)
    got = ats_loss(z_s, z_t, y, tau1=tau1, tau2=tau2, student_tau=s_tau, tau_squared=False, divergence=divergence)
    assert value(got) == pytest.approx(ref_ats(z_s, z_t, y, tau1, tau2, s_tau, False, divergence), rel=1e-12)


@pytest.mark.parametrize("tau,s_tau", [(4.0, 1.0), (2.0, 2.0), (8.0, 8.0)])
@pytest.mark.parametrize("divergence", ["soft_ce", "kl"])
def test_ats_with_equal_temperatures_is_kd(data, tau, s_tau, divergence):
    z_s, z_t, y = data
    a = ats_loss(z_s, z_t, y, tau1=tau, tau2=tau, student_tau=s_tau, divergence=divergence)
    k = kd_loss(z_s, z_t, y, tau=tau, student_tau=s_tau, ce_weight=0.5, kd_weight=0.5, divergence=divergence)
    assert value(a) == pytest.approx(value(k), rel=1e-12)
    # and an asymmetric pair is different
    a2 = ats_loss(z_s, z_t, y, tau1=tau + 1.0, tau2=tau, student_tau=s_tau, divergence=divergence)
    assert value(a2) != pytest.approx(value(k), rel=1e-6)


# ---- atkd ------------------------------------------------------------------


def ref_atkd(z_s, z_t, y, ddof=0, eps=0.0, ce_w=0.1, kd_w=0.9):
    terms = []
    for s, t in zip(z_s.tolist(), z_t.tolist()):
        tau_s = math.sqrt(std_row(s, ddof) ** 2 + eps)
        tau_t = math.sqrt(std_row(t, ddof) ** 2 + eps)
        terms.append(ref_soft(softmax_row(t, tau_t), softmax_row(s, tau_s), "soft_ce"))
    return ce_w * ref_ce(z_s, y) + kd_w * mean(terms)


def test_atkd_default_matches_eq10(data):
    z_s, z_t, y = data
    assert value(atkd_loss(z_s, z_t, y)) == pytest.approx(ref_atkd(z_s, z_t, y), rel=1e-12)


def test_atkd_std_and_eps_options(data):
    z_s, z_t, y = data
    biased = value(atkd_loss(z_s, z_t, y))
    unbiased = value(atkd_loss(z_s, z_t, y, std="unbiased"))
    assert unbiased == pytest.approx(ref_atkd(z_s, z_t, y, ddof=1), rel=1e-12)
    assert unbiased != pytest.approx(biased, rel=1e-6)
    with_eps = value(atkd_loss(z_s, z_t, y, eps=0.5))
    assert with_eps == pytest.approx(ref_atkd(z_s, z_t, y, eps=0.5), rel=1e-12)
    assert with_eps != pytest.approx(biased, rel=1e-6)


@pytest.mark.parametrize("a,b", [(3.7, -2.1), (0.25, 10.0)])
def test_atkd_invariant_to_affine_teacher(data, a, b):
    z_s, z_t, y = data
    grads, values = [], []
    for teacher in (z_t, a * z_t + b):
        zs = z_s.clone().requires_grad_()
        loss = atkd_loss(zs, teacher, y)
        loss.backward()
        values.append(value(loss))
        grads.append(zs.grad)
    assert values[0] == pytest.approx(values[1], rel=1e-12)
    torch.testing.assert_close(grads[0], grads[1])
    # vanilla KD is not invariant (the test can fail)
    assert value(kd_loss(z_s, z_t, y)) != pytest.approx(value(kd_loss(z_s, a * z_t + b, y)), rel=1e-6)


def test_atkd_shift_of_student_changes_nothing(data):
    # why there is no "center" option: softmax and CE ignore a per-sample shift
    z_s, z_t, y = data
    for kw in ({}, dict(ce_on="normalized", multiplier=2.0)):
        assert value(atkd_loss(z_s + 4.0, z_t, y, **kw)) == pytest.approx(value(atkd_loss(z_s, z_t, y, **kw)), rel=1e-12)


def test_atkd_public_code_variant(data):
    # Spherical-KD code: layer_norm(z, eps) * m, temperature T, KL batchmean * T^2,
    # CE on the normalised student logits. Reference written with F.layer_norm.
    z_s, z_t, y = data
    m, T, eps = 2.0, 4.0, 1e-7
    ns = F.layer_norm(z_s, (C,), eps=eps) * m
    nt = F.layer_norm(z_t, (C,), eps=eps) * m
    want = 0.1 * F.cross_entropy(ns, y) + 0.9 * T * T * F.kl_div(
        F.log_softmax(ns / T, dim=1), F.softmax(nt / T, dim=1), reduction="batchmean"
    )
    got = atkd_loss(
        z_s, z_t, y, eps=eps, multiplier=m, base_tau=T, tau_scale="base", ce_on="normalized", divergence="kl"
    )
    assert value(got) == pytest.approx(value(want), rel=1e-12)


def test_atkd_form_code2020_is_the_layer_norm_code(data):
    # skd_main.py v1 (de66b19) lines 453-464: layer_norm(z, eps=1e-7) * m on both, CE on the student's,
    # KLDivLoss(batchmean) * T * T; README command: --T=4 --multiplier 2. Reference with F.layer_norm.
    z_s, z_t, y = data
    loss = make_loss("atkd", form="code2020", ce_weight=0.5, kd_weight=0.5)
    assert {k: loss.params[k] for k in ("eps", "multiplier", "base_tau", "tau_scale", "ce_on", "divergence")} == \
        {"eps": 1e-7, "multiplier": 2.0, "base_tau": 4.0, "tau_scale": "base", "ce_on": "normalized", "divergence": "kl"}
    ns = F.layer_norm(z_s, (C,), eps=1e-7) * 2.0
    nt = F.layer_norm(z_t, (C,), eps=1e-7) * 2.0
    want = 0.5 * F.cross_entropy(ns, y) + 0.5 * 16.0 * F.kl_div(
        F.log_softmax(ns / 4.0, dim=1), F.softmax(nt / 4.0, dim=1), reduction="batchmean")
    assert abs(value(loss(z_s, z_t, y)) - value(want)) < 1e-14
    # the same number as the paper form with the code's options written out (the form is a name for them)
    paper = make_loss("atkd", ce_weight=0.5, kd_weight=0.5, eps=1e-7, multiplier=2.0, base_tau=4.0,
                      tau_scale="base", ce_on="normalized", divergence="kl")
    assert abs(value(paper(z_s, z_t, y)) - value(loss(z_s, z_t, y))) < 1e-15
    assert value(make_loss("atkd")(z_s, z_t, y)) != pytest.approx(value(want), rel=1e-6)


def ref_atkd_code2023(z_s, z_t, y, T=4.0, ce_w=0.1, kd_w=0.9):
    """skd_main.py, main 1c73fc0, lines 460-467, with plain-Python loops."""
    scaled = [[x * std_row(t, 1) / std_row(s, 1) for x in s] for s, t in zip(z_s.tolist(), z_t.tolist())]
    kd = mean([T * T * ref_soft(softmax_row(t, T), softmax_row(s, T), "kl") for s, t in zip(scaled, z_t.tolist())])
    return ce_w * ref_ce(torch.tensor(scaled, dtype=torch.float64), y) + kd_w * kd


def test_atkd_form_code2023_rescales_the_student_to_the_teachers_std(data):
    z_s, z_t, y = data
    loss = make_loss("atkd", form="code2023")
    assert loss.params["std"] == "unbiased" and loss.params["base_tau"] == 4.0 and loss.params["eps"] == 0.0
    assert value(loss(z_s, z_t, y)) == pytest.approx(ref_atkd_code2023(z_s, z_t, y), rel=1e-12)
    # the code's own reduction: per-sample KL times T*T*ones(N, 1) broadcasts to (N, N), summed, / N / N
    s = (z_t.std(dim=-1, keepdim=True) / z_s.std(dim=-1, keepdim=True))
    kl = F.kl_div(F.log_softmax(z_s * s / 4.0, dim=1), F.softmax(z_t / 4.0, dim=1), reduction="none").sum(-1)
    code_kd = torch.sum(kl * (16.0 * torch.ones(N, 1, dtype=torch.float64))) / N / N
    want = 0.1 * F.cross_entropy(z_s * s, y) + 0.9 * code_kd
    assert abs(value(loss(z_s, z_t, y)) - value(want)) < 1e-14
    # another number than the 2020 form and the paper's Eq. 10, and a gradient through Std(z)
    assert value(loss(z_s, z_t, y)) != pytest.approx(value(make_loss("atkd", form="code2020")(z_s, z_t, y)), rel=1e-6)
    zs = z_s.clone().requires_grad_()
    loss(zs, z_t, y).backward()
    zd = z_s.clone().requires_grad_()
    w = (z_t.std(dim=-1, keepdim=True) / z_s.std(dim=-1, keepdim=True))
    (0.1 * F.cross_entropy(zd * w, y) + 0.9 * 16.0 * F.kl_div(
        F.log_softmax(zd * w / 4.0, dim=1), F.softmax(z_t / 4.0, dim=1), reduction="batchmean")).backward()
    assert not torch.allclose(zs.grad, zd.grad)  # the detached scale would give another gradient


@pytest.mark.parametrize("form,option,bad", [("code2020", "ce_on", "raw"), ("code2020", "std", "unbiased"),
                                             ("code2023", "multiplier", 2.0), ("code2023", "tau_scale", "none"),
                                             ("code2023", "detach_stats", True)])
def test_atkd_form_rejects_what_its_code_does_not_compute(form, option, bad):
    with pytest.raises(ValueError, match=f"form '{form}' computes {option}"):
        make_loss("atkd", form=form, **{option: bad})
    with pytest.raises(ValueError, match="form must be one of"):
        make_loss("atkd", form="code2021")


def test_atkd_form_paper_keeps_run_ids():
    from benchmark.engine import config as C
    base = {"dataset": "cifar100", "model": "resnet8", "teacher": {"run": "0" * 16}, "data": {"source": "synthetic"}}
    plain = C.resolve({**base, "loss": {"name": "atkd"}})
    named = C.resolve({**base, "loss": {"name": "atkd", "form": "paper"}})
    assert plain["loss"]["form"] == "paper"  # recorded in the config and the result ...
    assert "form" not in C.identity(plain)["loss"]  # ... but not hashed: it is the default
    assert C.run_id(plain) == C.run_id(named)
    assert C.run_id(C.resolve({**base, "loss": {"name": "atkd", "form": "code2023"}})) != C.run_id(plain)


def test_atkd_tau_scale_student_and_multiplier(data):
    z_s, z_t, y = data
    terms = []
    for s, t in zip(z_s.tolist(), z_t.tolist()):
        tau_s, tau_t = std_row(s) / 2.0, std_row(t) / 2.0
        terms.append(std_row(s) ** 2 * ref_soft(softmax_row(t, tau_t), softmax_row(s, tau_s), "kl"))
    want = 0.1 * ref_ce(z_s, y) + 0.9 * mean(terms)
    got = atkd_loss(z_s, z_t, y, multiplier=2.0, tau_scale="student", divergence="kl")
    assert value(got) == pytest.approx(want, rel=1e-12)


def test_atkd_ce_on_normalized(data):
    z_s, z_t, y = data
    kw = dict(ce_weight=1.0, kd_weight=0.0)
    raw = value(atkd_loss(z_s, z_t, y, **kw))
    assert raw == pytest.approx(ref_ce(z_s, y), rel=1e-12)
    normed = z_s / torch.tensor([std_row(r) for r in z_s.tolist()], dtype=torch.float64)[:, None]
    got = value(atkd_loss(z_s, z_t, y, ce_on="normalized", **kw))
    assert got == pytest.approx(ref_ce(normed, y), rel=1e-12)
    assert got != pytest.approx(raw, rel=1e-6)


def test_atkd_detach_stats_changes_gradient_not_value(data):
    z_s, z_t, y = data
    grads, values = [], []
    for detach in (False, True):
        zs = z_s.clone().requires_grad_()
        loss = atkd_loss(zs, z_t, y, detach_stats=detach)
        loss.backward()
        grads.append(zs.grad)
        values.append(value(loss))
    assert values[0] == pytest.approx(values[1], rel=1e-14)
    assert not torch.allclose(grads[0], grads[1])
    # detached: the KD gradient is kd_w * (p_s - p_t) / (tau_S * N) (+ CE's)
    want = np.zeros((N, C))
    for i, (s, t, c) in enumerate(zip(z_s.tolist(), z_t.tolist(), y.tolist())):
        p_s, p_t, p = softmax_row(s, std_row(s)), softmax_row(t, std_row(t)), softmax_row(s, 1.0)
        for k in range(C):
            want[i, k] = (0.9 * (p_s[k] - p_t[k]) / std_row(s) + 0.1 * (p[k] - (k == c))) / N
    np.testing.assert_allclose(grads[1].numpy(), want, rtol=1e-10, atol=1e-15)


# ---- mse ----------------------------------------------------------------------


@pytest.mark.parametrize("reduction,div", [("mean", N * C), ("batchmean", N), ("sum", 1)])
def test_mse(data, reduction, div):
    z_s, z_t, y = data
    sq = sum((a - b) ** 2 for s, t in zip(z_s.tolist(), z_t.tolist()) for a, b in zip(s, t))
    assert value(mse_loss(z_s, z_t, y, reduction=reduction)) == pytest.approx(sq / div, rel=1e-12)
    got = mse_loss(z_s, z_t, y, reduction=reduction, ce_weight=0.3, kd_weight=2.0)
    assert value(got) == pytest.approx(2.0 * sq / div + 0.3 * ref_ce(z_s, y), rel=1e-12)


# ---- registry -------------------------------------------------------------------


def test_names_and_defaults_compute_the_papers_losses(data):
    """A manifest that names only the loss trains the papers' setting: the registry's loss with no
    options equals the hand-written formula with the papers' numbers written out here."""
    z_s, z_t, y = data
    assert set(loss_names()) == {"ce", "ls", "kd", "ats", "atkd", "mse", "label_match", "dkd", "ils"}
    want = {
        "ce": ref_ce(z_s, y),
        # LS-KD's teachers: alpha in {0.0, 0.1} (Table 2 columns); 0.1 is the smoothed one
        "ls": mean([0.9 * -math.log(softmax_row(r, 1.0)[t]) + 0.1 * mean([-math.log(p) for p in softmax_row(r, 1.0)])
                    for r, t in zip(z_s.tolist(), y.tolist())]),
        # ATKD Sect. 3: "Temperature is 4 for vanilla KD, and the weight of ... KD and cross-entropy is 0.9 and 0.1"
        "kd": ref_kd(z_s, z_t, y, tau=4.0, s_tau=4.0, scale=16.0, ce_w=0.1, kd_w=0.9),
        # ATS App. C.3: lambda = 0.5, student temperature 1.0; (tau1, tau2) = (4, 2) from its grid
        "ats": ref_ats(z_s, z_t, y, 4.0, 2.0, 1.0, lam=0.5),
        # ATKD Eq. 10: per-sample Std (1/K) temperatures, 0.9 ATKD + 0.1 CE, no tau^2
        "atkd": ref_atkd(z_s, z_t, y, ddof=0, eps=0.0, ce_w=0.1, kd_w=0.9),
        # KL-MSE public code: F.mse_loss over batch and classes, no CE
        "mse": sum((a - b) ** 2 for s, t in zip(z_s.tolist(), z_t.tolist()) for a, b in zip(s, t)) / (N * C),
        # KL-MSE's tau -> 0 limit: the student's top logit minus its logit at the teacher's top class
        "label_match": mean([max(s) - s[t.index(max(t))] for s, t in zip(z_s.tolist(), z_t.tolist())]),
        # DKD, mdistiller's cfg.py: CE 1, alpha 1, beta 8, T 4 (tests/test_dkd.py: the formula by hand)
        "dkd": sum(ref_dkd(z_s, z_t, y).values()),
        # ILS, ATS Eq. 2's first two terms: lambda 0.5 (App. C.3), tau 4 for teacher and student, tau_s^2
        "ils": 0.5 * ref_ce(z_s, y) + 0.5 * 16.0 * mean([sum(eq2_terms(s, t, k, 4.0, 4.0)[:2])
                                                        for s, t, k in zip(z_s.tolist(), z_t.tolist(), y.tolist())]),
    }
    for name in loss_names():
        assert value(make_loss(name)(z_s, z_t, y)) == pytest.approx(want[name], rel=1e-12), name
    # what the signature stores: None = "the teacher's tau", resolved when the loss is made
    assert loss_defaults("kd")["student_tau"] is None and make_loss("kd").params["student_tau"] == 4.0
    for name in loss_names():
        for option, default in loss_defaults(name).items():
            assert isinstance(default, (float, bool, str)) or (default is None and option == "student_tau")


def test_make_loss_records_resolved_params(data):
    z_s, z_t, y = data
    loss = make_loss("kd", tau=2)  # int accepted for a float option
    assert loss.name == "kd" and loss.needs_teacher
    # tau changes tau and the student's temperature it stands for, nothing else
    assert loss.params == {**make_loss("kd").params, "tau": 2.0, "student_tau": 2.0}
    assert isinstance(loss.params["tau"], float)
    assert value(loss(z_s, z_t, y)) == pytest.approx(ref_kd(z_s, z_t, y, tau=2.0, s_tau=2.0, scale=4.0), rel=1e-12)
    assert make_loss("kd", tau=math.inf).params["student_tau"] == math.inf
    ce = make_loss("ce")
    assert not ce.needs_teacher and ce.params == {}
    assert value(ce(z_s, None, y)) == pytest.approx(ref_ce(z_s, y), rel=1e-12)
    assert not make_loss("ls").needs_teacher
    for name in ("kd", "ats", "atkd", "mse"):
        lo = make_loss(name)
        assert lo.needs_teacher and set(lo.params) == set(loss_defaults(name))  # a result names every option
        again = make_loss(name, **lo.params)  # ... and the record rebuilds the same loss
        assert again.params == lo.params and value(again(z_s, z_t, y)) == value(lo(z_s, z_t, y))


def test_make_loss_rejects_bad_input(data):
    z_s, _, y = data
    with pytest.raises(ValueError, match=r"unknown loss 'x'; known: ce, ls, kd"):
        make_loss("x")
    with pytest.raises(ValueError, match="temperature"):
        make_loss("kd", temperature=4.0)
    with pytest.raises(ValueError, match="tau_squared"):
        make_loss("kd", tau_squared=1)
    with pytest.raises(ValueError, match="tau"):
        make_loss("kd", tau="4")
    with pytest.raises(ValueError, match="ce_weight"):
        make_loss("kd", ce_weight=True)
    with pytest.raises(ValueError, match="student_tau"):
        make_loss("ats", student_tau=None)
    with pytest.raises(ValueError, match="reduction"):
        make_loss("kd", reduction="avg")
    with pytest.raises(ValueError, match="tau_scale"):
        make_loss("atkd", tau_scale="student_and_teacher")
    with pytest.raises(ValueError, match="tau_scale"):
        make_loss("kd", tau_scale="base")  # an atkd value, not a kd one
    with pytest.raises(ValueError, match="tau"):
        make_loss("kd", tau=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        make_loss("ls", alpha=1.5)
    with pytest.raises(ValueError, match="teacher"):
        make_loss("kd")(z_s, None, y)


# ---- dtypes and devices ---------------------------------------------------------------


def _devices():
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("name,params", [
    ("ce", {}), ("ls", {}), ("kd", {}), ("kd", {"tau": math.inf}), ("ats", {}), ("atkd", {}), ("mse", {}),
])
def test_bf16_autocast_computes_in_float32(device, name, params):
    g = torch.Generator().manual_seed(3)
    z_s = (torch.randn(8, 10, generator=g) * 3).to(device)
    z_t = (torch.randn(8, 10, generator=g) * 3).to(device)
    y = torch.randint(0, 10, (8,), generator=g).to(device)
    loss = make_loss(name, **params)
    z_s16, z_t16 = z_s.bfloat16().requires_grad_(), z_t.bfloat16()
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        out = loss(z_s16, z_t16, y)
    out.backward()
    assert out.dtype == torch.float32 and out.device.type == device
    # same as float32 math on the bf16-rounded inputs
    want = loss(z_s16.detach().float(), z_t16.float(), y)
    assert value(out) == pytest.approx(value(want), rel=1e-5)
    assert z_s16.grad is not None and torch.isfinite(z_s16.grad.float()).all()
