"""ILS (benchmark/engine/methods/ils.py): ATS Eq. 2's first two terms by hand in float64, the
decomposition ILS + (III) = KD, label smoothing as its special case, and a smoke training run."""

import math

import pytest
import torch

from benchmark.engine import methods
from benchmark.engine.execution import ExecOptions
from benchmark.engine.methods.ils import ils_target, ils_terms
from benchmark.engine.train import train_run
from benchmark.losses import make_loss
from benchmark.store.layout import Store
from tests.helpers import small_feature_run, teacher_checkpoint


def softmax(row, tau):
    m = max(row)
    e = [math.exp((v - m) / tau) for v in row]
    return [v / sum(e) for v in e]


def eq2_terms(s, t, y, tau, s_tau):
    """ATS Eq. 2 for one sample, by hand: (I) correct guidance, (II) smooth regularization,
    (III) class discriminability, with e = mean of the teacher's wrong-class probabilities."""
    p_t, p_s = softmax(t, tau), softmax(s, s_tau)
    wrong = [c for c in range(len(t)) if c != y]
    e = sum(p_t[c] for c in wrong) / len(wrong)
    one = -p_t[y] * math.log(p_s[y])
    two = -sum(e * math.log(p_s[c]) for c in wrong)
    three = -sum((p_t[c] - e) * math.log(p_s[c]) for c in wrong)
    return one, two, three


def batch(seed=0, n=5, c=7, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    z_s = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
    z_t = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
    return z_s, z_t, torch.randint(0, c, (n,), generator=g)


def mean(xs):
    return sum(xs) / len(xs)


@pytest.mark.parametrize("tau, s_tau, scale, ce_w, kd_w", [(4.0, 4.0, "student", 0.5, 0.5),
                                                          (2.0, 1.0, "student", 0.3, 0.7),
                                                          (8.0, 1.0, "teacher", 0.0, 1.0)])
def test_terms_are_eq2_first_two_terms_in_float64(tau, s_tau, scale, ce_w, kd_w):
    z_s, z_t, y = batch(1)
    got = ils_terms(z_s, z_t, y, tau=tau, student_tau=s_tau, tau_scale=scale, ce_weight=ce_w, kd_weight=kd_w)
    assert list(got) == ["ce", "ils"]
    rows = list(zip(z_s.tolist(), z_t.tolist(), y.tolist()))
    factor = (s_tau if scale == "student" else tau) ** 2
    want_ils = kd_w * factor * mean([sum(eq2_terms(s, t, k, tau, s_tau)[:2]) for s, t, k in rows])
    want_ce = ce_w * mean([-math.log(softmax(s, 1.0)[k]) for s, t, k in rows])
    assert float(got["ils"]) == pytest.approx(want_ils, rel=1e-12)
    assert float(got["ce"]) == pytest.approx(want_ce, rel=1e-12, abs=1e-15)


def test_ils_plus_class_discriminability_is_the_kd_term():
    """Eq. 2: (I) + (II) + (III) = -sum_c p^T_c log p^S_c, this suite's KD term in its soft_ce form."""
    z_s, z_t, y = batch(2, n=6, c=9)
    for tau, s_tau in ((4.0, 4.0), (2.0, 1.0)):
        ils = ils_terms(z_s, z_t, y, tau=tau, student_tau=s_tau, ce_weight=0.0, kd_weight=1.0, tau_squared=False)
        third = mean([eq2_terms(s, t, k, tau, s_tau)[2] for s, t, k in zip(z_s.tolist(), z_t.tolist(), y.tolist())])
        kd = make_loss("kd", tau=tau, student_tau=s_tau, ce_weight=0.0, kd_weight=1.0, tau_squared=False,
                       divergence="soft_ce")(z_s, z_t, y)
        assert float(ils["ils"]) + third == pytest.approx(float(kd), rel=1e-12)
        assert abs(third) > 1e-3  # the dropped term is not 0 here: ILS and KD differ


def test_equal_wrong_class_logits_make_ils_kd():
    """(III) vanishes when the teacher's wrong-class probabilities are all equal: then ILS = KD."""
    z_s, _, y = batch(3, n=4, c=6)
    z_t = torch.full_like(z_s, -1.0).scatter(1, y[:, None], 2.5)
    opts = {"tau": 3.0, "student_tau": 1.0, "ce_weight": 0.2, "kd_weight": 0.8}
    got = methods.total(ils_terms(z_s, z_t, y, **opts))
    kd = make_loss("kd", **opts, divergence="soft_ce")(z_s, z_t, y)
    assert float(got) == pytest.approx(float(kd), rel=1e-12)


def test_the_target_is_instance_specific_label_smoothing():
    """r = the teacher's p_y at the target, (1 - p_y) / (C - 1) elsewhere; at tau_s = 1 ILS is ``ls``
    with alpha = C (1 - p_y) / (C - 1) for a one-sample batch, and it does not see how the teacher
    orders its wrong classes."""
    z_s, z_t, y = batch(4, n=1, c=5)
    p = softmax(z_t[0].tolist(), 2.0)
    k = int(y[0])
    r = ils_target(z_t, y, 2.0).exp()[0].tolist()
    assert r == pytest.approx([p[k] if c == k else (1 - p[k]) / 4 for c in range(5)], rel=1e-12)
    assert sum(r) == pytest.approx(1.0, rel=1e-12)
    alpha = 5 * (1 - p[k]) / 4
    ils = ils_terms(z_s, z_t, y, tau=2.0, student_tau=1.0, ce_weight=0.0, kd_weight=1.0)["ils"]
    assert float(ils) == pytest.approx(float(make_loss("ls", alpha=alpha)(z_s, None, y)), rel=1e-12)
    others = [c for c in range(5) if c != k]
    shuffled = z_t.clone()
    shuffled[0, others] = z_t[0, list(reversed(others))]
    assert float(ils_terms(z_s, shuffled, y)["ils"]) == pytest.approx(float(ils_terms(z_s, z_t, y)["ils"]), rel=1e-12)
    kd = make_loss("kd", divergence="soft_ce")
    assert abs(float(kd(z_s, shuffled, y)) - float(kd(z_s, z_t, y))) > 1e-6  # KD does see it


def test_kl_form_subtracts_the_targets_entropy():
    z_s, z_t, y = batch(5)
    soft = ils_terms(z_s, z_t, y, ce_weight=0.0, kd_weight=1.0)["ils"]
    kl = ils_terms(z_s, z_t, y, ce_weight=0.0, kd_weight=1.0, divergence="kl")["ils"]
    log_r = ils_target(z_t, y, 4.0)
    entropy = float(-(log_r.exp() * log_r).sum(dim=1).mean())
    assert float(kl) == pytest.approx(float(soft) - 16.0 * entropy, rel=1e-12)
    assert float(kl) >= 0.0


def test_a_confident_teacher_stays_finite():
    """p_y^T within rounding of 1 (float32): log(1 - p_y) from the other logits, not log(1 - p_y)."""
    z_s = torch.zeros(2, 4)
    z_t = torch.tensor([[80.0, 0.0, 0.0, 0.0], [0.0, 0.0, 90.0, 0.0]])
    y = torch.tensor([0, 2])
    log_r = ils_target(z_t, y, 1.0)
    assert torch.isfinite(log_r).all()
    # 1 - p_y = 3 e^-80 / (1 + 3 e^-80): each wrong class gets e^-80 (a float32 1 - p_y would be 0, log -inf)
    assert float(log_r[0, 1]) == pytest.approx(-80.0, rel=1e-6)
    assert float(log_r[1, 0]) == pytest.approx(-90.0, rel=1e-6)
    assert torch.isfinite(methods.total(ils_terms(z_s, z_t, y)))


def test_gradient_reaches_the_student_only():
    z_s, z_t, y = batch(6)
    z_s.requires_grad_()
    z_t.requires_grad_()
    methods.total(ils_terms(z_s, z_t, y)).backward()
    assert z_s.grad is not None and torch.isfinite(z_s.grad).all() and z_s.grad.abs().sum() > 0
    assert z_t.grad is None


def test_options_are_declared_with_defaults_and_checked():
    assert methods.resolve("ils", {}) == {"tau": 4.0, "student_tau": 4.0, "ce_weight": 0.5, "kd_weight": 0.5,
                                          "tau_squared": True, "tau_scale": "student", "divergence": "soft_ce"}
    assert methods.resolve("ils", {"tau": 2.0})["student_tau"] == 2.0
    for bad in ({"tau": 0.0}, {"student_tau": -1.0}, {"tau_scale": "tau1"}, {"divergence": "mse"},
                {"reduction": "sum"}, {"tau": math.nan}):
        with pytest.raises(ValueError):
            make_loss("ils", **bad)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return teacher_checkpoint(tmp_path_factory.mktemp("teacher"), "resnet8", seed=3)


def test_trains_in_a_smoke_run_with_its_terms_logged(teacher, tmp_path):
    cfg = small_feature_run(teacher, {"name": "ils", "tau": 2.0, "student_tau": 1.0}, epochs=1)
    assert cfg["loss"] == {"name": "ils", "tau": 2.0, "student_tau": 1.0, "ce_weight": 0.5, "kd_weight": 0.5,
                           "tau_squared": True, "tau_scale": "student", "divergence": "soft_ce"}
    store = Store(tmp_path)
    res = train_run(cfg, store, ExecOptions())
    assert res["status"] == "done" and "loss:ils" in res["revisions"]
    (m,) = store.metrics(res["id"])
    assert {"loss_ce", "loss_ils"} <= set(m)
    assert m["train_loss"] == pytest.approx(m["loss_ce"] + m["loss_ils"], rel=1e-5)
