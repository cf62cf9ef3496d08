"""IE-AT (benchmark/engine/distillers/ieat.py): the tapped map, the auto-encoder stage's loss, the
inheritance and exploration terms (value and gradient against hand-written float64 formulas),
the weight schedule, one real pre-training step and one real main step, and parameter checks."""

import math

import pytest
import torch
import torch.nn.functional as F

from benchmark.engine.distillers.ieat import IEAT, last_map
from benchmark.engine.models import build_model
from tests.helpers import ref_at, ref_ce

N = 4
DT = torch.float64


def params(**changes):
    return {**IEAT.defaults(), **changes}


def fake(g, channels=(3, 4, 6), sides=(8, 4, 4), classes=5, grad=True):
    """A fake extract() dict in float64 (with pre-activation taps)."""
    def t(*shape):
        return torch.randn(*shape, generator=g, dtype=DT).requires_grad_(grad)
    pre = [t(N, c, s, s) for c, s in zip(channels, sides)]
    stages = [F.relu(p) for p in pre]
    stem = t(N, 3, 8, 8)
    return {"logits": t(N, classes), "penultimate": stages[-1].mean((2, 3)), "stages": stages,
            "taps": [stem, *stages], "preact_taps": [stem, *pre]}


def build(fs, ft, **changes):
    torch.manual_seed(1)
    return IEAT(fs, ft, 5, **params(**changes)).double()


def check(value, ref, inputs):
    assert value.item() == pytest.approx(ref.item(), rel=1e-9, abs=1e-12)
    g1 = torch.autograd.grad(value, inputs, retain_graph=True, allow_unused=True)
    g2 = torch.autograd.grad(ref, inputs, retain_graph=True, allow_unused=True)
    for a, b in zip(g1, g2):
        assert a is not None and b is not None
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-10)


# ---- hand-written references ----------------------------------------------------------------


def leaky(x):
    return torch.where(x > 0, x, 0.1 * x)


def ref_coder(x, coder, train=True):
    """LeakyReLU, then three (3x3 conv without bias, BatchNorm, LeakyReLU): batch statistics in
    train mode (biased variance), the running ones in eval mode."""
    convs = [m for m in coder.modules() if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in coder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(convs) == 3 and all(c.bias is None and c.kernel_size == (3, 3) for c in convs)
    h = leaky(x)
    for conv, bn in zip(convs, bns):
        h = F.conv2d(h, conv.weight, padding=1)
        if train:
            mean = h.mean(dim=(0, 2, 3), keepdim=True)
            var = ((h - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
        else:
            mean, var = bn.running_mean.view(1, -1, 1, 1), bn.running_var.view(1, -1, 1, 1)
        h = (h - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
        h = leaky(h)
    return h


# ---- the tapped map ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet8", "wrn_16_2", "vgg8"])
def test_last_map_is_what_the_pooling_reads(name):
    torch.manual_seed(0)
    f = build_model(name, 10).eval().extract(torch.randn(2, 3, 32, 32))
    m = last_map(f)
    torch.testing.assert_close(m.mean((2, 3)), f["penultimate"])
    if name != "wrn_16_2":  # ResNet / VGG: the last tap itself; WRN: after the final BN + ReLU
        assert torch.equal(m, f["taps"][-1])
    # without pre-activation taps: the last map of ``taps``
    assert torch.equal(last_map({k: v for k, v in f.items() if k != "preact_taps"}), f["taps"][-1])


# ---- stage 1: the teacher's auto-encoder ------------------------------------------------------


def test_reconstruction_loss_and_the_stage():
    g = torch.Generator().manual_seed(0)
    fs, ft = fake(g), fake(g, channels=(3, 5, 7), grad=False)
    d = build(fs, ft, factor_dim=3, init_epochs=7, init_lr=0.02)
    (stage,) = d.pretrain_stages(torch.nn.Linear(1, 1))
    assert (stage.epochs, stage.lr, stage.needs_student) == (7, 0.02, False)
    assert stage.modules == [d.teacher_ae]
    ae = d.teacher_ae
    assert [c.out_channels for c in ae.encoder.modules() if isinstance(c, torch.nn.Conv2d)] == [7, 3, 3]
    assert [c.out_channels for c in ae.decoder.modules() if isinstance(c, torch.nn.Conv2d)] == [3, 7, 7]
    d.eval()
    ae.train()
    f_t = F.relu(ft["preact_taps"][-1])
    rec = ref_coder(ref_coder(f_t, ae.encoder), ae.decoder)
    ref = (rec - f_t).abs().sum() / f_t.numel()
    weights = [p for p in ae.parameters() if p.ndim == 4]
    check(stage.loss(None, ft, None), ref, weights)


def test_coder_initialisation():
    torch.manual_seed(0)
    d = IEAT(*(build_model("resnet8", 10).eval().extract(torch.randn(2, 3, 32, 32)) for _ in range(2)), 10,
             **params())
    conv = [m for m in d.teacher_ae.encoder.modules() if isinstance(m, torch.nn.Conv2d)][1]  # 64 -> 32
    assert conv.weight.shape == (32, 64, 3, 3)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * 32)), rel=0.05)
    bn = [m for m in d.teacher_ae.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(b.weight, torch.ones_like(b.weight)) and not b.bias.any() for b in bn)
    assert d.split == 32 and d.encoder_inh.layers[1].in_channels == 32 and d.encoder_exp.layers[1].in_channels == 32


# ---- main stage: inheritance and exploration ----------------------------------------------------


def test_inheritance_and_exploration_with_the_total_loss():
    g = torch.Generator().manual_seed(2)
    fs = fake(g, channels=(3, 4, 6), sides=(8, 8, 4))
    ft = fake(g, channels=(3, 5, 7), sides=(8, 4, 4), grad=False)
    y = torch.tensor([0, 3, 4, 1])
    d = build(fs, ft, factor_dim=3, ce_weight=0.5, weight=10.0, inh_weight=2.0, exp_weight=0.5)
    for bn in (m for m in d.teacher_ae.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    running = {k: v.clone() for k, v in d.teacher_ae.state_dict().items()}
    d.train()
    value = d(fs, ft, y)

    f_s, f_t = F.relu(fs["preact_taps"][-1]), F.relu(ft["preact_taps"][-1])
    z_t = ref_coder(f_t, d.teacher_ae.encoder, train=False).detach()  # frozen, running statistics
    z_inh = ref_coder(f_s[:, :3], d.encoder_inh)  # 6 channels: the first 3 inherit
    z_exp = ref_coder(f_s[:, 3:], d.encoder_exp)
    ref = 0.5 * ref_ce(fs["logits"], y) + 10.0 * (2.0 * ref_at(z_inh, z_t) - 0.5 * ref_at(z_exp, z_t))
    enc = [p for p in (*d.encoder_inh.parameters(), *d.encoder_exp.parameters())]
    check(value, ref, [fs["logits"], fs["preact_taps"][-1], *enc])

    # the teacher's auto-encoder: no gradient, unchanged statistics, its mode given back
    value.backward()
    assert all(p.grad is None for p in d.teacher_ae.parameters())
    after = d.teacher_ae.state_dict()
    assert all(torch.equal(running[k], after[k]) for k in running)
    assert d.teacher_ae.training


def test_without_autoencoder_odd_channels():
    g = torch.Generator().manual_seed(3)
    fs = fake(g, channels=(3, 4, 5), sides=(8, 8, 8))
    ft = fake(g, channels=(3, 5, 7), sides=(8, 4, 4), grad=False)
    d = build(fs, ft, autoencoder=False, ce_weight=0.0, weight=1.0)
    assert d.pretrain_stages(None) == [] and not list(d.parameters())
    f_s, f_t = F.relu(fs["preact_taps"][-1]), F.relu(ft["preact_taps"][-1])
    # 5 channels: 2 inherit, 3 explore; the 8x8 student maps pooled to the teacher's 4x4
    ref = ref_at(f_s[:, :2], f_t) - ref_at(f_s[:, 2:], f_t)
    check(d(fs, ft, None), ref, [fs["preact_taps"][-1]])


def test_weight_schedule():
    g = torch.Generator().manual_seed(4)
    fs, ft = fake(g), fake(g, grad=False)
    constant = build(fs, ft)  # config/ie_kd.yaml: base 1, no decay
    for e in (0, 80, 239):
        constant.set_epoch(e)
        assert (constant.inh_w, constant.exp_w) == (1.0, 1.0)
    d = build(fs, ft, inh_weight=2.0, exp_weight=4.0, decay_step=10, decay_gamma=0.5)
    for e, f in ((0, 1.0), (9, 1.0), (10, 0.5), (25, 0.25)):
        d.set_epoch(e)
        assert (d.inh_w, d.exp_w) == (2.0 * f, 4.0 * f)
    d.set_epoch(10)
    d.train()
    z_inh, z_exp = d.parts(fs)
    z_t = d.teacher_factor(ft)
    ref = 1.0 * ref_at(z_inh, z_t) - 2.0 * ref_at(z_exp, z_t)  # feature_loss: before ``weight``
    assert d.feature_loss(fs, ft, None, None).item() == pytest.approx(ref.item(), rel=1e-9)


# ---- one real step of each stage ------------------------------------------------------------


def test_one_step_of_each_stage_through_real_networks():
    torch.manual_seed(0)
    student, teacher = build_model("resnet8", 10), build_model("resnet14", 10).eval()
    x, y = torch.randn(4, 3, 32, 32), torch.arange(4)
    with torch.no_grad():
        probe_s, probe_t, ft = student.eval().extract(x[:2]), teacher.extract(x[:2]), teacher.extract(x)
    d = IEAT(probe_s, probe_t, 10, **params(init_epochs=1))
    def sgd(ps, lr):
        return torch.optim.SGD(ps, lr=lr, momentum=0.9, weight_decay=5e-4)

    # stage 1: as the trainer runs it (student and distiller in eval mode, the stage's modules in train mode)
    (stage,) = d.pretrain_stages(student)
    student.eval()
    d.eval()
    for m in stage.modules:
        m.train()
    ae_before = [p.detach().clone() for p in d.teacher_ae.parameters()]
    student_before = [p.detach().clone() for p in student.parameters()]
    opt = sgd([p for m in stage.modules for p in m.parameters()], stage.lr)
    loss = stage.loss(student.extract(x) if stage.needs_student else None, ft, y)
    assert torch.isfinite(loss) and loss > 0
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    assert all(not torch.equal(a, b) for a, b in zip(ae_before, d.teacher_ae.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(student_before, student.parameters()))

    # main stage: every distiller parameter in the student's optimizer; the auto-encoder stays put
    student.train()
    d.train()
    d.set_epoch(0)
    opt = sgd([*student.parameters(), *d.parameters()], 0.1)
    ae_state = {k: v.clone() for k, v in d.teacher_ae.state_dict().items()}
    enc_before = [p.detach().clone() for p in (*d.encoder_inh.parameters(), *d.encoder_exp.parameters())]
    loss = d(student.extract(x), ft, y)
    assert torch.isfinite(loss)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    assert not torch.equal(student_before[0], next(student.parameters()))
    assert all(not torch.equal(a, b) for a, b in
               zip(enc_before, (*d.encoder_inh.parameters(), *d.encoder_exp.parameters())))
    assert all(torch.equal(v, d.teacher_ae.state_dict()[k]) for k, v in ae_state.items())


# ---- parameter checks -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    {"weight": -1.0}, {"inh_weight": -0.5}, {"exp_weight": math.inf}, {"p": 0.0}, {"factor_dim": 0},
    {"decay_step": -1}, {"decay_gamma": 0.0}, {"init_epochs": -1}, {"init_lr": 0.0}, {"tau": 0.0},
])
def test_bad_params_raise(bad):
    g = torch.Generator().manual_seed(5)
    with pytest.raises(ValueError):
        IEAT(fake(g), fake(g), 5, **params(**bad))


def test_a_one_channel_student_map_cannot_be_split():
    g = torch.Generator().manual_seed(6)
    with pytest.raises(ValueError, match="two halves"):
        IEAT(fake(g, channels=(3, 4, 1)), fake(g), 5, **params())
