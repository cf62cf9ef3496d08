"""Loss terms: recorded next to the total without changing it, summed per epoch on the device."""

import math

import pytest
import torch
import torch.nn.functional as F

from benchmark.engine import methods
from benchmark.engine import terms as T
from benchmark.engine.distillers import make_distiller
from benchmark.engine.losses import make_loss
from benchmark.engine.models import build_model


def batch(seed=0, n=6, k=5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g) * 3, torch.randn(n, k, generator=g) * 3, torch.randint(0, k, (n,), generator=g)


def kl_ref(z_s, z_t, tau):
    p_t = F.softmax(z_t / tau, 1)
    return (p_t * (F.log_softmax(z_t / tau, 1) - F.log_softmax(z_s / tau, 1))).sum(1).mean() * tau**2


@pytest.mark.parametrize("name,params,names", [
    ("ce", {}, {"ce"}), ("ls", {"alpha": 0.2}, {"ls"}), ("kd", {"tau": 3.0}, {"ce", "kd"}),
    ("ats", {}, {"ce", "kd"}), ("atkd", {}, {"ce", "kd"}), ("mse", {"ce_weight": 0.3}, {"ce", "mse"}),
])
def test_logit_loss_terms_sum_to_the_call_bit_for_bit(name, params, names):
    z_s, z_t, y = batch()
    loss = make_loss(name, **params)
    parts = loss.terms(z_s, z_t, y)
    assert set(parts) == names | {"total"}
    assert torch.equal(parts["total"], loss(z_s, z_t, y))  # the call is unchanged
    assert float(sum(v for k, v in parts.items() if k != "total")) == pytest.approx(float(parts["total"]), rel=1e-6)


def test_kd_terms_are_the_weighted_ce_and_kl():
    z_s, z_t, y = batch(1)
    parts = make_loss("kd", tau=2.0, ce_weight=0.25, kd_weight=0.75).terms(z_s, z_t, y)
    assert float(parts["ce"]) == pytest.approx(0.25 * float(F.cross_entropy(z_s, y)), rel=1e-6)
    assert float(parts["kd"]) == pytest.approx(0.75 * float(kl_ref(z_s, z_t, 2.0)), rel=1e-6)


def test_terms_are_returned_per_call_not_collected_aside():
    """Each call returns its own terms (no context collects them): a loss called inside another's
    accounting adds nothing to it, and a plain call returns the sum alone."""
    z_s, z_t, y = batch(2)
    loss = make_loss("kd")
    outer = loss.loss_terms(methods.Step(z_s, z_t, y))
    inner = make_loss("ce").loss_terms(methods.Step(z_s, None, y))
    assert set(outer) == {"ce", "kd"} and set(inner) == {"ce"}
    assert float(outer["ce"]) == pytest.approx(0.1 * float(F.cross_entropy(z_s, y)))
    assert torch.equal(methods.total(outer), loss(z_s, z_t, y))  # the call: the terms' sum, bit for bit
    assert not hasattr(T, "recording") and not hasattr(T, "record")


def test_atkd_code2023_returns_its_terms():
    """The code2023 form used to return its total only: its CE and KD terms now reach the metrics."""
    z_s, z_t, y = batch(3)
    loss = make_loss("atkd", form="code2023")
    parts = loss.terms(z_s, z_t, y)
    assert set(parts) == {"ce", "kd", "total"}
    assert torch.equal(parts["total"], parts["ce"] + parts["kd"])
    w = z_t.std(dim=1, keepdim=True) / z_s.std(dim=1, keepdim=True)
    assert float(parts["ce"]) == pytest.approx(0.1 * float(F.cross_entropy(z_s * w, y)), rel=1e-6)


def test_distiller_terms():
    torch.manual_seed(0)
    s, t = build_model("resnet8", 10).eval(), build_model("resnet14", 10).eval()
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        fs, ft = s.extract(x), t.extract(x)
    d = make_distiller("fitnet", fs, ft, 10, kd_weight=0.5, weight=10.0)
    parts = d.terms(fs, ft, y)
    assert set(parts) == {"ce", "kd", "feature", "total"}
    assert torch.equal(parts["total"], d(fs, ft, y))
    assert float(parts["ce"]) == pytest.approx(float(F.cross_entropy(fs["logits"], y)), rel=1e-6)
    assert float(parts["kd"]) == pytest.approx(0.5 * float(kl_ref(fs["logits"], ft["logits"], 4.0)), rel=1e-5)
    with torch.no_grad():
        feature = float(d.feature_loss(fs, ft, y, None))
    assert float(parts["feature"]) == pytest.approx(10.0 * feature, rel=1e-6)


def test_meter_means_grad_norm_and_first_bad_step():
    m = T.TermMeter("cpu")
    steps = [({"ce": 1.0, "kd": 2.0}, 4, 3.0), ({"ce": 3.0, "kd": math.inf}, 2, 5.0), ({"ce": math.nan, "kd": math.nan}, 2, 1.0)]
    for terms, n, g in steps:
        tt = {k: torch.tensor(v) for k, v in terms.items()}
        m.add(tt, sum(tt.values()), n, torch.tensor(g))
    s = m.summary()
    assert math.isnan(s["loss_ce"]) and math.isnan(s["loss_kd"])
    assert s["grad_norm"] == pytest.approx(3.0)
    assert s["nonfinite_frac"] == pytest.approx(2 / 3)
    assert s["first_nonfinite"] == {"kd": 1, "total": 1, "ce": 2}
    assert T.nonfinite_reason(s).startswith("term 'kd' went non-finite first (step 2 of the epoch)")
    good = T.TermMeter("cpu")
    for terms, n, g in steps[:1] * 2 + [({"ce": 4.0, "kd": 0.0}, 2, 2.0)]:
        tt = {k: torch.tensor(v) for k, v in terms.items()}
        good.add(tt, sum(tt.values()), n, torch.tensor(g))
    s = good.summary()
    assert s["loss_ce"] == pytest.approx((1 * 8 + 4 * 2) / 10) and s["loss_kd"] == pytest.approx(16 / 10)
    assert s["nonfinite_frac"] == 0 and s["first_nonfinite"] == {} and s["grad_norm"] == pytest.approx(8 / 3)


def test_grad_norm_is_the_global_l2_norm():
    a, b = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
    a.grad, b.grad = torch.tensor([1.0, 2.0, 2.0]), torch.tensor([0.0, 4.0])
    assert float(T.grad_norm([a, b, torch.zeros(1, requires_grad=True)])) == pytest.approx(math.sqrt(1 + 4 + 4 + 16))
    assert T.grad_norm([torch.zeros(1, requires_grad=True)]) is None
