"""Overhaul (Heo et al. 2019): the BN margin, the partial L2 and the whole feature loss against
hand-written float64 formulas (value and gradient), the pre-ReLU taps and BatchNorms of the
ResNets it reads, one trainer run through a real teacher, and LS-KD Table B.5's plan."""

import math

import pytest
import torch
from torch import nn

from benchmark.catalog.plan import Planner
from benchmark.engine.distillers import make_distiller, resolve_params
from benchmark.engine.distillers.overhaul import Overhaul, bn_margin, partial_l2
from benchmark.engine.execution import ExecOptions
from benchmark.engine.models import build_model
from benchmark.engine.train import train_run
from benchmark.store.layout import Store
from tests.helpers import small_feature_run, teacher_checkpoint

DT = torch.float64


def normal_cdf(x):
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def ref_margin(gamma, beta):
    """The margin per channel, scalar by scalar: E[x | x < 0] for x ~ N(beta, gamma^2)."""
    s = abs(gamma)
    tail = normal_cdf(-beta / s)
    if tail <= 1e-3:
        return -3 * s
    return beta - s * math.exp(-0.5 * (beta / s) ** 2) / math.sqrt(2 * math.pi) / tail


def ref_partial_l2(source, target, margin):
    """The partial L2 distance by an explicit loop over every element."""
    total = source.new_zeros(())
    for idx in torch.cartesian_prod(*[torch.arange(n) for n in source.shape]):
        b, c, h, w = idx.tolist()
        t = torch.maximum(target[b, c, h, w], margin[c])
        s = source[b, c, h, w]
        if not (s <= t and t <= 0):
            total = total + (s - t) ** 2
    return total


def test_bn_margin_against_the_gaussian_formula():
    bn = nn.BatchNorm2d(5)
    gammas, betas = [1.0, -2.0, 0.5, 0.1, 3.0], [0.0, 1.0, -0.3, 0.4, 2.0]  # 0.1/0.4: P(x<0) ~ 3e-5
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(gammas))
        bn.bias.copy_(torch.tensor(betas))
    got = bn_margin(bn)
    want = [ref_margin(g, b) for g, b in zip(gammas, betas)]
    assert got.tolist() == pytest.approx(want, rel=1e-6)
    assert got[0].item() == pytest.approx(-math.sqrt(2 / math.pi), rel=1e-6)  # half-normal mean
    assert got[3].item() == pytest.approx(-0.3)  # the code's fallback, -3 |gamma|


def test_bn_margin_is_the_mean_of_negative_samples():
    bn = nn.BatchNorm2d(1)
    with torch.no_grad():
        bn.weight.fill_(1.5)
        bn.bias.fill_(0.7)
    x = 0.7 + 1.5 * torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=DT)
    assert bn_margin(bn).item() == pytest.approx(x[x < 0].mean().item(), abs=5e-3)


def test_partial_l2_value_and_gradient():
    g = torch.Generator().manual_seed(0)
    source = torch.randn(2, 3, 2, 2, generator=g, dtype=DT, requires_grad=True)
    target = torch.randn(2, 3, 2, 2, generator=g, dtype=DT)
    margin = torch.tensor([-0.5, -0.1, -2.0], dtype=DT)
    value, ref = partial_l2(source, target, margin), ref_partial_l2(source, target, margin)
    assert value.item() == pytest.approx(ref.item(), rel=1e-12)
    (grad,) = torch.autograd.grad(value, source)
    t = torch.maximum(target, margin.view(1, -1, 1, 1))
    kept = ~((source <= t) & (t <= 0))
    torch.testing.assert_close(grad, 2 * (source - t).detach() * kept, rtol=1e-12, atol=0)
    assert 0 < kept.sum() < kept.numel()  # both branches of the mask are exercised


def fake(g, channels, sides, n=3, classes=4):
    pre = [torch.randn(n, c, s, s, generator=g, dtype=DT, requires_grad=True) for c, s in zip(channels, sides)]
    return {"logits": torch.randn(n, classes, generator=g, dtype=DT), "penultimate": torch.randn(n, 8, dtype=DT),
            "stages": [p.relu() for p in pre], "preact_taps": [None, *pre]}


def test_feature_loss_against_the_hand_written_sum():
    g = torch.Generator().manual_seed(1)
    fs, ft = fake(g, [2, 3], [4, 2]), fake(g, [3, 5], [4, 2])
    torch.manual_seed(0)
    d = Overhaul(fs, ft, 4, **resolve_params("overhaul")).double()
    d.margin0.copy_(torch.tensor([-0.2, -1.0, -0.4]))
    d.margin1.copy_(torch.linspace(-1, -0.1, 5))
    value = d.feature_loss(fs, ft, None, None)
    n = 3
    ref = 0
    for i, conn in enumerate(d.connectors):  # later stages weigh more: 1/2, then 1
        ref = ref + ref_partial_l2(conn(fs["preact_taps"][1 + i]), ft["preact_taps"][1 + i],
                                   getattr(d, f"margin{i}").double()) / 2 ** (1 - i)
    ref = ref / n
    assert value.item() == pytest.approx(ref.item(), rel=1e-10)
    inputs = [*fs["preact_taps"][1:], *d.parameters()]
    for a, b in zip(torch.autograd.grad(value, inputs, retain_graph=True), torch.autograd.grad(ref, inputs)):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)
    assert not any(t.grad is not None for t in ft["preact_taps"][1:])  # the teacher's maps are detached


def test_total_loss_is_kd_plus_weighted_feature_term():
    g = torch.Generator().manual_seed(2)
    fs, ft = fake(g, [2], [2]), fake(g, [2], [2])
    y = torch.tensor([0, 1, 3])
    d = Overhaul(fs, ft, 4, **resolve_params("overhaul", ce_weight=0.0, kd_weight=1.0, tau=3.0)).double()
    log_p_s, p_t = (fs["logits"] / 3).log_softmax(1), (ft["logits"] / 3).softmax(1)
    kd = 9 * (p_t * (p_t.log() - log_p_s)).sum(1).mean()
    want = kd + 1e-4 * d.feature_loss(fs, ft, y, None)
    assert d(fs, ft, y).item() == pytest.approx(want.item(), rel=1e-10)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet20"])
def test_resnet_preact_taps_and_their_batchnorms(name):
    torch.manual_seed(0)
    model = build_model(name, 7).eval()
    side = 32 if name == "resnet20" else 64
    with torch.no_grad():
        x = torch.randn(2, 3, side, side)
        out, logits = model.extract(x), model(x)
    torch.testing.assert_close(out["logits"], logits, rtol=1e-5, atol=1e-5)
    pre = out["preact_taps"][1:]
    assert len(pre) == len(out["stages"])
    for p, s in zip(pre, out["stages"]):
        torch.testing.assert_close(p.relu(), s, rtol=0, atol=0)
        assert (p < 0).any()  # really before the ReLU
    norms = model.preact_batchnorms()
    assert [bn.num_features for bn in norms] == [p.shape[1] for p in pre]
    layers = [model.layer1, model.layer2, model.layer3] + ([model.layer4] if hasattr(model, "layer4") else [])
    last = "bn3" if name == "resnet50" else "bn2"
    assert all(bn is getattr(layer[-1], last) for bn, layer in zip(norms, layers))


def test_one_step_through_torchvision_resnets():
    torch.manual_seed(0)
    student, teacher = build_model("resnet18", 10).train(), build_model("resnet34", 10).eval()
    with torch.no_grad():
        for bn in teacher.preact_batchnorms():
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    x, y = torch.randn(4, 3, 64, 64), torch.arange(4)
    with torch.no_grad():
        probe_s, ft = student.eval().extract(x[:2]), teacher.extract(x)
    student.train()
    d = make_distiller("overhaul", probe_s, teacher.extract(x[:2]), 10, train_labels=None)
    d.attach_teacher(teacher)
    for i, bn in enumerate(teacher.preact_batchnorms()):
        torch.testing.assert_close(getattr(d, f"margin{i}"), bn_margin(bn))
    assert "margin0" not in d.state_dict()  # recomputed from the teacher, never checkpointed
    opt = torch.optim.SGD([*student.parameters(), *d.parameters()], lr=0.1)
    before = [p.detach().clone() for p in (student.conv1.weight, d.connectors[0][0].weight, d.connectors[3][1].bias)]
    loss = d(student.extract(x), ft, y)
    assert torch.isfinite(loss)
    opt.zero_grad()
    loss.backward()
    opt.step()
    after = (student.conv1.weight, d.connectors[0][0].weight, d.connectors[3][1].bias)
    assert all(not torch.equal(b, a) for b, a in zip(before, after))


def test_mismatched_networks_are_refused():
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        r8, wrn = build_model("resnet8", 5).eval().extract(x), build_model("wrn_16_1", 5).eval().extract(x)
        vgg = build_model("vgg8", 5).eval().extract(x)
        alex = build_model("alexnet_small", 5).eval().extract(torch.randn(2, 3, 64, 64))
    with pytest.raises(ValueError, match="one to one"):
        make_distiller("overhaul", r8, vgg, 5, train_labels=None)
    with pytest.raises(ValueError, match="pre-ReLU"):
        make_distiller("overhaul", alex, alex, 5, train_labels=None)
    d = make_distiller("overhaul", r8, wrn, 5, train_labels=None)
    with pytest.raises(ValueError, match="preact_batchnorms"):
        d.attach_teacher(build_model("wrn_16_1", 5))


def test_trainer_run_and_a_teacher_without_batchnorm_access(tmp_path):
    teacher = teacher_checkpoint(tmp_path, "resnet14", 3)
    result = train_run(small_feature_run(teacher, {"name": "overhaul", "weight": 1e-3}, 1), Store(tmp_path / "s"),
                       ExecOptions())
    assert result["status"] == "done", result.get("reason")
    wrn = teacher_checkpoint(tmp_path, "wrn_16_1", 3)
    failed = train_run(small_feature_run(wrn, {"name": "overhaul"}, 1), Store(tmp_path / "w"), ExecOptions())
    assert failed["status"] == "failed" and "preact_batchnorms" in failed["reason"]


def test_lskd_table_b5_plans_overhaul_with_kd():
    plan = Planner("paper").plan("lskd-tableb5")
    cells = {(c.row, c.col): c for c in plan.cells}
    assert set(cells) == {(r, c) for r in ("Teacher", "T=1", "T=3")
                          for c in ("ResNet-50 alpha=0.0", "ResNet-50 alpha=0.1")}
    planner = Planner("paper")
    planner.plan("lskd-tableb5")
    students = [j for j in planner.jobs.values() if j.config["loss"]["name"] == "overhaul"]
    assert len(students) == 12  # 2 teachers x 2 temperatures x 3 seeds
    losses = {(j.config["loss"]["tau"], j.config["loss"]["ce_weight"], j.config["loss"]["kd_weight"],
               j.config["loss"]["weight"]) for j in students}
    assert losses == {(1.0, 0.0, 1.0, 1e-4), (3.0, 0.0, 1.0, 1e-4)}
    assert {j.config["model"] for j in students} == {"resnet50"}
