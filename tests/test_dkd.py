"""DKD (benchmark/engine/methods/dkd.py): the paper's formula in float64, mdistiller's own values, the
warm-up, and a smoke training run that logs its terms."""

import json
import math
from pathlib import Path

import pytest
import torch

from benchmark.engine import config as C
from benchmark.engine import methods
from benchmark.engine.execution import ExecOptions
from benchmark.engine.methods.dkd import dkd_terms, warmup_factor
from benchmark.engine.train import train_run
from benchmark.losses import make_loss
from benchmark.store.layout import Store
from tests.helpers import small_feature_run, teacher_checkpoint

REFERENCE = Path(__file__).parent / "fixtures" / "dkd_mdistiller.json"


def softmax(row, tau):
    m = max(row)
    e = [math.exp((v - m) / tau) for v in row]
    return [v / sum(e) for v in e]


def kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)


def ref_dkd(z_s, z_t, y, ce_w=1.0, alpha=1.0, beta=8.0, tau=4.0, w=1.0):
    """The paper's decomposition by hand, in Python floats (float64): b = [p_t, 1 - p_t] and
    p^_i = p_i / (1 - p_t) over the non-target classes; terms as dkd.py's docstring."""
    ce, tckd, nckd = [], [], []
    for s, t, k in zip(z_s.tolist(), z_t.tolist(), y.tolist()):
        p_s, p_t = softmax(s, tau), softmax(t, tau)
        b_s, b_t = [p_s[k], 1 - p_s[k]], [p_t[k], 1 - p_t[k]]
        hat_s = [p / (1 - p_s[k]) for i, p in enumerate(p_s) if i != k]
        hat_t = [p / (1 - p_t[k]) for i, p in enumerate(p_t) if i != k]
        ce.append(-math.log(softmax(s, 1.0)[k]))
        tckd.append(kl(b_t, b_s))
        nckd.append(kl(hat_t, hat_s))
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {"ce": ce_w * mean(ce), "tckd": w * alpha * tau**2 * mean(tckd), "nckd": w * beta * tau**2 * mean(nckd)}


def batch(seed=0, n=6, c=7, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    z_s = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
    z_t = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
    return z_s, z_t, torch.randint(0, c, (n,), generator=g)


@pytest.mark.parametrize("options", [{}, {"alpha": 2.0, "beta": 0.5, "tau": 1.0, "ce_weight": 0.3},
                                     {"tau": 8.0, "beta": 2.0}])
def test_terms_are_the_papers_formula_in_float64(options):
    z_s, z_t, y = batch(1)
    got = dkd_terms(z_s, z_t, y, **options)
    want = ref_dkd(z_s, z_t, y, **{k.replace("ce_weight", "ce_w"): v for k, v in options.items()})
    assert list(got) == ["ce", "tckd", "nckd"]
    for name in want:
        assert float(got[name]) == pytest.approx(want[name], rel=1e-12, abs=1e-15), name
    # make_loss: the registry's defaults (mdistiller's) and no epoch (full weight) give the same sum
    if not options:
        assert float(make_loss("dkd")(z_s, z_t, y)) == pytest.approx(sum(want.values()), rel=1e-12)


def test_classical_kd_is_tckd_plus_weighted_nckd():
    """The paper's decomposition, KD = TCKD + (1 - p_t^T) NCKD, per sample: with per-sample weights
    the two DKD terms add up to this suite's own KD term."""
    z_s, z_t, y = batch(2, n=1, c=9)
    p_t = torch.softmax(z_t / 4.0, dim=1)[0, y[0]].item()
    one = dkd_terms(z_s, z_t, y, ce_weight=0.0, alpha=1.0, beta=1.0 - p_t)
    kd = make_loss("kd", tau=4.0, ce_weight=0.0, kd_weight=1.0)(z_s, z_t, y)
    assert float(one["tckd"] + one["nckd"]) == pytest.approx(float(kd), rel=1e-12)


def test_matches_mdistillers_own_values():
    """Values computed once by mdistiller's DKD.py (commit and inputs in the fixture)."""
    ref = json.loads(REFERENCE.read_text())
    assert "a08d46f10d6102bd6e3f258ca5ac880b020ea259" in ref["source"]
    assert len(ref["cases"]) >= 5
    for case in ref["cases"]:
        g = torch.Generator().manual_seed(case["seed"])
        z_s = torch.randn(case["n"], case["c"], generator=g, dtype=torch.float64) * case["scale"]
        z_t = torch.randn(case["n"], case["c"], generator=g, dtype=torch.float64) * case["scale"]
        y = torch.randint(0, case["c"], (case["n"],), generator=g)
        assert [float(z_s.sum()), float(z_t.sum()), int(y.sum())] == pytest.approx(list(case["checksum"].values()))
        opts = case["options"]
        got = dkd_terms(z_s, z_t, y, **opts, epoch=case["mdistiller_epoch"] - 1)  # theirs counts from 1
        assert float(got["ce"]) == pytest.approx(case["loss_ce"], rel=1e-6)
        assert float(got["tckd"] + got["nckd"]) == pytest.approx(case["loss_kd"], rel=1e-6)
        full = dkd_terms(z_s, z_t, y, **{**opts, "alpha": 1.0, "beta": 1.0})
        assert float(full["tckd"]) == pytest.approx(case["tckd_times_tau2"], rel=1e-6)
        assert float(full["nckd"]) == pytest.approx(case["nckd_times_tau2"], rel=1e-6)


def test_warmup_is_linear_per_epoch_as_mdistiller():
    assert [warmup_factor(e, 20.0) for e in (0, 1, 9, 18, 19, 20, 200)] == \
        [1 / 20, 2 / 20, 10 / 20, 19 / 20, 1.0, 1.0, 1.0]
    assert warmup_factor(None, 20.0) == 1.0 and warmup_factor(0, 0.0) == 1.0
    z_s, z_t, y = batch(3)
    loss = make_loss("dkd")
    early = loss.loss_terms(methods.Step(z_s, z_t, y, epoch=4, progress=0.5))
    late = loss.loss_terms(methods.Step(z_s, z_t, y, epoch=30))
    assert torch.equal(early["ce"], late["ce"])
    for name in ("tckd", "nckd"):
        assert float(early[name]) == pytest.approx(5 / 20 * float(late[name]), rel=1e-12)


def test_gradient_reaches_the_student_only():
    z_s, z_t, y = batch(4)
    z_s.requires_grad_()
    z_t.requires_grad_()
    methods.total(dkd_terms(z_s, z_t, y)).backward()
    assert z_s.grad is not None and torch.isfinite(z_s.grad).all() and z_s.grad.abs().sum() > 0
    assert z_t.grad is None


def test_options_are_declared_with_defaults_and_checked():
    assert methods.resolve("dkd", {}) == {"ce_weight": 1.0, "alpha": 1.0, "beta": 8.0, "tau": 4.0,
                                          "warmup_epochs": 20.0}
    for bad in ({"tau": 0.0}, {"beta": -1.0}, {"warmup_epochs": -1}, {"alpha": math.nan}, {"gamma": 1.0}):
        with pytest.raises(ValueError):
            make_loss("dkd", **bad)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return teacher_checkpoint(tmp_path_factory.mktemp("teacher"), "resnet8", seed=3)


def test_trains_in_a_smoke_run_with_its_terms_logged(teacher, tmp_path):
    cfg = small_feature_run(teacher, {"name": "dkd", "warmup_epochs": 2}, epochs=2)
    assert cfg["loss"] == {"name": "dkd", "ce_weight": 1.0, "alpha": 1.0, "beta": 8.0, "tau": 4.0,
                           "warmup_epochs": 2.0}
    store = Store(tmp_path)
    res = train_run(cfg, store, ExecOptions())
    assert res["status"] == "done" and "loss:dkd" in res["revisions"]
    lines = store.metrics(res["id"])
    assert len(lines) == 2
    for m in lines:
        assert {"loss_ce", "loss_tckd", "loss_nckd"} <= set(m)
        assert m["train_loss"] == pytest.approx(m["loss_ce"] + m["loss_tckd"] + m["loss_nckd"], rel=1e-5)
    assert C.resolve(cfg) == cfg
