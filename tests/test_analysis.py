"""Analysis metrics against hand-written float64 loops of the papers' definitions."""

import math

import numpy as np
import pytest
import torch

from benchmark.engine.analysis import (
    adaptive_temperature,
    ats_probs,
    derived_average,
    derived_variance,
    entropy,
    inherent_variance,
    logit_sum,
    sharpness,
    sharpness_gap,
    target_probability,
)

N, C = 4, 5


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(N, C, generator=g, dtype=torch.float64) * 3.0 + 0.7
    targets = torch.tensor([0, 3, 4, 1])
    return logits, targets


# ---- reference formulas: plain Python over lists, no torch ----------------


def softmax_row(row, taus):
    ex = [math.exp(f / t) for f, t in zip(row, taus)]
    s = sum(ex)
    return [e / s for e in ex]


def ref_probs(logits, targets, tau, target_tau=None):
    out = []
    for row, y in zip(logits.tolist(), targets.tolist()):
        taus = [tau] * len(row)
        if target_tau is not None:
            taus[y] = target_tau
        out.append(softmax_row(row, taus))
    return out


def mean(xs):
    return sum(xs) / len(xs)


def pop_var(xs):
    m = mean(xs)
    return sum((x - m) ** 2 for x in xs) / len(xs)


def wrong(row, y):
    return [v for c, v in enumerate(row) if c != y]


# ---- ATS ------------------------------------------------------------------


def test_ats_probs_matches_eq5(data):
    logits, targets = data
    got = ats_probs(logits, targets, tau1=4.0, tau2=2.0)
    want = ref_probs(logits, targets, tau=2.0, target_tau=4.0)
    np.testing.assert_allclose(got.numpy(), np.array(want), rtol=1e-12)
    log_got = ats_probs(logits, targets, tau1=4.0, tau2=2.0, log=True)
    np.testing.assert_allclose(log_got.exp().numpy(), got.numpy(), rtol=1e-12)


def test_ats_probs_symmetric_is_temperature_scaling(data):
    logits, targets = data
    got = ats_probs(logits, targets, tau1=3.0, tau2=3.0)
    np.testing.assert_allclose(got.numpy(), np.array(ref_probs(logits, targets, 3.0)), rtol=1e-12)


def test_ats_probs_raise_target_temperature_lowers_target_probability(data):
    logits, targets = data
    # make the target the largest logit (Assumption 4.2) so a larger tau1 softens it
    logits = logits.clone()
    logits[torch.arange(N), targets] = logits.max(dim=1).values + 2.0
    p_ts = target_probability(logits, targets, tau=2.0)
    p_ats = target_probability(logits, targets, tau=2.0, target_tau=4.0)
    assert torch.all(p_ats < p_ts)


@pytest.mark.parametrize("tau,target_tau", [(1.0, None), (4.0, None), (2.0, 4.0)])
def test_wrong_class_metrics_match_table1(data, tau, target_tau):
    logits, targets = data
    probs = ref_probs(logits, targets, tau, target_tau)
    want_py, want_e, want_v = [], [], []
    for p, y in zip(probs, targets.tolist()):
        q = wrong(p, y)
        want_py.append(p[y])
        want_e.append(sum(q) / (C - 1))
        want_v.append(sum((qj - sum(q) / (C - 1)) ** 2 for qj in q) / (C - 1))
    kw = dict(tau=tau, target_tau=target_tau)
    np.testing.assert_allclose(target_probability(logits, targets, **kw).numpy(), want_py, rtol=1e-12)
    np.testing.assert_allclose(derived_average(logits, targets, **kw).numpy(), want_e, rtol=1e-12)
    np.testing.assert_allclose(derived_variance(logits, targets, **kw).numpy(), want_v, rtol=1e-10)


@pytest.mark.parametrize("tau", [1.0, 3.0])
def test_inherent_variance_softmax_over_wrong_logits_only(data, tau):
    logits, targets = data
    want = []
    for row, y in zip(logits.tolist(), targets.tolist()):
        g = wrong(row, y)
        want.append(pop_var(softmax_row(g, [tau] * len(g))))
    np.testing.assert_allclose(inherent_variance(logits, targets, tau=tau).numpy(), want, rtol=1e-10)
    # it must not depend on the target logit
    moved = logits.clone()
    moved[torch.arange(N), targets] += 5.0
    np.testing.assert_allclose(
        inherent_variance(moved, targets, tau=tau).numpy(), want, rtol=1e-10
    )


@pytest.mark.parametrize("tau,target_tau", [(1.0, None), (0.5, None), (4.0, None), (2.0, 4.0)])
def test_proposition_4_4(tau, target_tau):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(64, 10, generator=g, dtype=torch.float64) * 4.0
    targets = torch.randint(0, 10, (64,), generator=g)
    dv = derived_variance(logits, targets, tau=tau, target_tau=target_tau)
    da = derived_average(logits, targets, tau=tau, target_tau=target_tau)
    iv = inherent_variance(logits, targets, tau=tau)
    torch.testing.assert_close(dv, (10 - 1) ** 2 * da**2 * iv, rtol=1e-10, atol=0)


def test_derived_average_is_one_minus_target_over_c_minus_1(data):
    logits, targets = data
    torch.testing.assert_close(
        derived_average(logits, targets, tau=2.0),
        (1 - target_probability(logits, targets, tau=2.0)) / (C - 1),
    )


# ---- ATKD -----------------------------------------------------------------


def test_adaptive_temperature_biased_and_unbiased(data):
    logits, _ = data
    rows = logits.tolist()
    biased = [math.sqrt(sum((x - mean(r)) ** 2 for x in r) / len(r)) for r in rows]
    unbiased = [math.sqrt(sum((x - mean(r)) ** 2 for x in r) / (len(r) - 1)) for r in rows]
    with_eps = [math.sqrt(b**2 + 0.5) for b in biased]
    np.testing.assert_allclose(adaptive_temperature(logits).numpy(), biased, rtol=1e-12)
    np.testing.assert_allclose(adaptive_temperature(logits, std="unbiased").numpy(), unbiased, rtol=1e-12)
    np.testing.assert_allclose(adaptive_temperature(logits, eps=0.5).numpy(), with_eps, rtol=1e-12)
    with pytest.raises(ValueError, match="std"):
        adaptive_temperature(logits, std="population")


def test_sharpness_is_logsumexp(data):
    logits, _ = data
    rows = logits.tolist()
    np.testing.assert_allclose(
        sharpness(logits).numpy(), [math.log(sum(math.exp(x) for x in r)) for r in rows], rtol=1e-12
    )
    np.testing.assert_allclose(
        sharpness(logits, tau=4.0).numpy(),
        [math.log(sum(math.exp(x / 4.0) for x in r)) for r in rows],
        rtol=1e-12,
    )
    stds = [math.sqrt(pop_var(r)) for r in rows]
    np.testing.assert_allclose(
        sharpness(logits, tau="adaptive").numpy(),
        [math.log(sum(math.exp(x / s) for x in r)) for r, s in zip(rows, stds)],
        rtol=1e-12,
    )
    # per-sample tensor temperatures
    np.testing.assert_allclose(
        sharpness(logits, tau=torch.tensor(stds, dtype=torch.float64)).numpy(),
        sharpness(logits, tau="adaptive").numpy(),
        rtol=1e-12,
    )
    with pytest.raises(ValueError):
        sharpness(logits, tau="auto")


def test_sharpness_center_option(data):
    logits, _ = data  # rows do not sum to 0
    centered = logits - logits.mean(dim=1, keepdim=True)
    assert not torch.allclose(sharpness(logits), sharpness(logits, center=True))
    torch.testing.assert_close(sharpness(logits, center=True), sharpness(centered))


def test_sharpness_gap_teacher_minus_student(data):
    z, _ = data
    v = z.flip(0) * 2.0
    lse = lambda r, t: math.log(sum(math.exp(x / t) for x in r))  # noqa: E731
    # Eq. 6: one temperature for both
    want = [lse(vr, 4.0) - lse(zr, 4.0) for vr, zr in zip(v.tolist(), z.tolist())]
    np.testing.assert_allclose(sharpness_gap(z, v, teacher_tau=4.0).numpy(), want, rtol=1e-12)
    # Table 8: a fixed (tau_T, tau_S) pair
    want = [lse(vr, 4.0) - lse(zr, 3.5) for vr, zr in zip(v.tolist(), z.tolist())]
    np.testing.assert_allclose(sharpness_gap(z, v, teacher_tau=4.0, student_tau=3.5).numpy(), want, rtol=1e-12)
    # Eq. 15 default: each network at its own Std
    want = [
        lse(vr, math.sqrt(pop_var(vr))) - lse(zr, math.sqrt(pop_var(zr)))
        for vr, zr in zip(v.tolist(), z.tolist())
    ]
    np.testing.assert_allclose(sharpness_gap(z, v).numpy(), want, rtol=1e-12)
    with pytest.raises(ValueError):
        sharpness_gap(z, v[:, :3])


def test_entropy_and_logit_sum(data):
    logits, _ = data
    want = []
    for r in logits.tolist():
        p = softmax_row(r, [2.0] * len(r))
        want.append(-sum(pi * math.log(pi) for pi in p))
    np.testing.assert_allclose(entropy(logits, tau=2.0).numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(entropy(torch.zeros(2, C)).numpy(), [math.log(C)] * 2, rtol=1e-6)
    np.testing.assert_allclose(logit_sum(logits).numpy(), [sum(r) for r in logits.tolist()], rtol=1e-12)


def test_float32_and_bf16_inputs_give_float32():
    logits = torch.randn(N, C).to(torch.bfloat16)
    targets = torch.tensor([0, 1, 2, 3])
    for out in (
        derived_variance(logits, targets),
        inherent_variance(logits, targets),
        sharpness(logits, tau="adaptive"),
        entropy(logits),
        adaptive_temperature(logits),
    ):
        assert out.dtype == torch.float32 and out.shape == (N,)


def test_bad_shapes_and_temperatures(data):
    logits, targets = data
    with pytest.raises(ValueError):
        derived_average(logits[0], targets)
    with pytest.raises(ValueError):
        derived_average(logits, targets[:2])
    with pytest.raises(ValueError):
        ats_probs(logits, targets, tau1=0.0, tau2=1.0)
    with pytest.raises(ValueError):
        entropy(logits, tau=-1.0)


def test_loss_temperatures_are_the_runs_own():
    """The sharpness gap's temperatures of a run (per epoch in the trainer, per cell in the report):
    KD's tau for both, a separate student tau when given, ATKD's adaptive Std when the loss has none."""
    from benchmark.engine.analysis import loss_temperatures

    assert loss_temperatures({"name": "kd", "tau": 4.0, "student_tau": 4.0}) == (4.0, 4.0)
    assert loss_temperatures({"name": "kd", "tau": 8.0, "student_tau": 1.0}) == (8.0, 1.0)
    assert loss_temperatures({"name": "kd", "tau": 2.0, "student_tau": None}) == (2.0, 2.0)
    assert loss_temperatures({"name": "atkd", "std": "biased"}) == ("adaptive", "adaptive")
