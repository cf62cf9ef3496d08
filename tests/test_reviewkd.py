"""ReviewKD: HCL and the ABF chain against hand-written float64 formulas (value and gradient), the
loss-weight warm-up, one real SGD step through the ATS Table 7 pairs, and parameter checks."""

import math

import pytest
import torch

from benchmark.engine.distillers.reviewkd import (
    ABF,
    CHOSEN_WEIGHTS,
    PUBLISHED_WEIGHTS,
    ReviewKD,
    hcl,
    hcl_level,
    reviewkd_weight,
    warmup_factor,
)
from benchmark.engine.models import build_model

DT = torch.float64
N = 3


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Batches of 2-4 gain nothing from a second thread, and lose much when the other core is busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make(fs, ft, classes=5, **params):
    torch.manual_seed(1)
    return ReviewKD(fs, ft, classes, **{**ReviewKD.defaults(), **params})


def fake(g, stem, maps, dim, classes=5, grad=True):
    """A fake extract() dict in float64 with taps == preact_taps (the distiller reads one of them)."""
    def t(*shape):
        return torch.randn(*shape, generator=g, dtype=DT).requires_grad_(grad)
    stages = [t(N, c, s, s) for c, s in maps]
    taps = [t(N, stem[0], stem[1], stem[1]), *stages]
    return {"logits": t(N, classes), "penultimate": t(N, dim), "stages": stages, "taps": taps,
            "preact_taps": taps}


def check(value, ref, inputs):
    assert value.item() == pytest.approx(ref.item(), rel=1e-10, abs=1e-13)
    g1 = torch.autograd.grad(value, inputs, retain_graph=True)
    g2 = torch.autograd.grad(ref, inputs, retain_graph=True)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)


# ---- hand-written references ------------------------------------------------------------------

# ReviewKD's hcl, written out per map height: (pooled size, weight) terms, the first the map itself.
HCL_TERMS = {8: [(8, 1.0), (4, 0.5), (2, 0.25), (1, 0.125)],
             4: [(4, 1.0), (2, 0.5), (1, 0.25)],
             2: [(2, 1.0), (1, 0.5)],
             1: [(1, 1.0)]}


def block_mean(x, side):
    """Average over side x side equal blocks, by explicit slicing."""
    k = x.shape[-1] // side
    rows = [torch.stack([x[..., i * k:(i + 1) * k, j * k:(j + 1) * k].mean(dim=(-2, -1)) for j in range(side)], -1)
            for i in range(side)]
    return torch.stack(rows, -2)


def ref_hcl_level(o, t):
    terms = HCL_TERMS[o.shape[-1]]
    total = 0
    for side, w in terms:
        d = block_mean(o, side) - block_mean(t, side)
        total = total + w * (d ** 2).sum() / d.numel()
    return total / sum(w for _, w in terms)


def bn_train(h, bn):
    mean = h.mean(dim=(0, 2, 3), keepdim=True)
    var = ((h - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
    return (h - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)


def conv1x1(x, w, b=None):
    y = torch.einsum("oc,nchw->nohw", w[:, :, 0, 0], x)
    return y if b is None else y + b.view(1, -1, 1, 1)


def conv3x3(x, w):
    h, wd = x.shape[-2:]
    xp = torch.zeros(*x.shape[:2], h + 2, wd + 2, dtype=x.dtype)
    xp[..., 1:-1, 1:-1] = x
    return sum(torch.einsum("oc,nchw->nohw", w[:, :, dy, dx], xp[..., dy:dy + h, dx:dx + wd])
               for dy in range(3) for dx in range(3))


def nearest_up(x, side):
    k = side // x.shape[-1]
    return x.repeat_interleave(k, -2).repeat_interleave(k, -1)


def ref_abf(abf, x, residual):
    x = bn_train(conv1x1(x, abf.reduce[0].weight), abf.reduce[1])
    if residual is not None:
        r = nearest_up(residual, x.shape[-1])
        a = torch.sigmoid(conv1x1(torch.cat([x, r], 1), abf.attention.weight, abf.attention.bias))
        x = a[:, 0:1] * x + a[:, 1:2] * r
    return bn_train(conv3x3(x, abf.project[0].weight), abf.project[1]), x


def ref_review(d, fs, ft):
    s = [*fs["taps"][1:], fs["penultimate"][:, :, None, None]]
    t = [*ft["preact_taps"][1:], ft["penultimate"][:, :, None, None]]
    outs, residual = [None] * len(s), None
    for i in reversed(range(len(s))):
        outs[i], residual = ref_abf(d.abfs[i], s[i], residual)
    return sum(ref_hcl_level(o, x) for o, x in zip(outs, t))


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    fs = fake(g, (2, 8), [(2, 8), (3, 4), (4, 2)], dim=5)
    ft = fake(g, (3, 8), [(3, 8), (2, 4), (4, 2)], dim=6, grad=False)
    return fs, ft, torch.tensor([0, 3, 4])


# ---- HCL ----------------------------------------------------------------------------------------


def test_hcl_value_and_gradient():
    g = torch.Generator().manual_seed(2)
    shapes = [(N, 3, 8, 8), (N, 4, 4, 4), (N, 2, 2, 2), (N, 5, 1, 1)]
    o = [torch.randn(*s, generator=g, dtype=DT, requires_grad=True) for s in shapes]
    t = [torch.randn(*s, generator=g, dtype=DT) for s in shapes]
    for a, b in zip(o, t):
        check(hcl_level(a, b), ref_hcl_level(a, b), [a])
    check(hcl(o, t), sum(ref_hcl_level(a, b) for a, b in zip(o, t)), o)


def test_hcl_single_pixel_by_hand():
    # one 4x4 map, 1 sample, 1 channel: o = 0, t = 16 at one pixel. Full MSE 256/16 = 16;
    # 2x2 pool: that block's mean is 4, MSE 16/4 = 4; 1x1: mean 1, MSE 1.
    o = torch.zeros(1, 1, 4, 4, dtype=DT)
    t = torch.zeros(1, 1, 4, 4, dtype=DT)
    t[0, 0, 1, 2] = 16.0
    assert hcl_level(o, t).item() == pytest.approx((16 + 0.5 * 4 + 0.25 * 1) / 1.75)


# ---- ABF ----------------------------------------------------------------------------------------


def test_abf_fusion_shapes_and_values():
    torch.manual_seed(0)
    abf = ABF(3, 4, 6, fuse=True).double()
    with torch.no_grad():  # attention: constant maps sigmoid(0.3), sigmoid(-1.2)
        abf.attention.weight.zero_()
        abf.attention.bias.copy_(torch.tensor([0.3, -1.2]))
    x = torch.randn(2, 3, 4, 4, dtype=DT)
    residual = torch.randn(2, 4, 1, 1, dtype=DT)  # the pooled level: broadcast by nearest up-sampling
    out, fused = abf(x, residual, (4, 4))
    assert out.shape == (2, 6, 4, 4) and fused.shape == (2, 4, 4, 4)
    reduced = bn_train(conv1x1(x, abf.reduce[0].weight), abf.reduce[1])
    a, b = 1 / (1 + math.exp(-0.3)), 1 / (1 + math.exp(1.2))
    expect = a * reduced + b * residual
    torch.testing.assert_close(fused, expect)
    torch.testing.assert_close(out, bn_train(conv3x3(expect, abf.project[0].weight), abf.project[1]))
    # a teacher map larger than the student's: the fused map is resized (nearest) before the 3x3 conv,
    # and the resized map is the residual handed on
    out, fused = abf(x, residual, (8, 8))
    assert out.shape == (2, 6, 8, 8)
    torch.testing.assert_close(fused, nearest_up(expect, 8))
    # the deepest ABF has no attention and needs no residual
    deepest = ABF(5, 4, 7, fuse=False)
    assert deepest.attention is None
    assert deepest(torch.randn(2, 5, 1, 1), None, (1, 1))[0].shape == (2, 7, 1, 1)
    with pytest.raises(ValueError, match="residual"):
        abf(x, None, (4, 4))


def test_review_loss_against_the_hand_written_chain(pair):
    fs, ft, y = pair
    d = make(fs, ft, ce_weight=0.0, weight=1.0).double()
    assert [(a.reduce[0].in_channels, a.reduce[0].out_channels, a.project[0].out_channels) for a in d.abfs] \
        == [(2, 5, 3), (3, 5, 2), (4, 5, 4), (5, 5, 6)]  # mid = min(512, pooled width 5)
    assert [a.attention is not None for a in d.abfs] == [True, True, True, False]
    inputs = [*fs["taps"][1:], fs["penultimate"], d.abfs[0].reduce[0].weight, d.abfs[1].attention.weight,
              d.abfs[3].project[0].weight, d.abfs[2].project[1].bias]
    check(d(fs, ft, y), ref_review(d, fs, ft), inputs)


def test_total_loss_with_weight_and_warmup(pair):
    fs, ft, y = pair
    d = make(fs, ft, weight=0.6, warmup_epochs=20).double()
    ce = torch.nn.functional.cross_entropy(fs["logits"], y)
    d.start_epoch(5, 240)
    check(d(fs, ft, y), ce + 0.6 * 0.25 * ref_review(d, fs, ft), [fs["logits"], fs["taps"][2]])
    d.start_epoch(0, 240)  # factor 0: CE only, but the ABFs get zero gradients, not none (train.py's product)
    loss = d(fs, ft, y)
    assert loss.item() == pytest.approx(ce.item(), rel=1e-12)
    loss.backward()
    for p in d.parameters():
        assert p.grad is not None and not p.grad.any()


# ---- warm-up and parameters -----------------------------------------------------------------------


def test_warmup_factor():
    assert [warmup_factor(e, 20.0) for e in (0, 1, 10, 19, 20, 21, 239)] == [0.0, 0.05, 0.5, 0.95, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0.0) == 1.0 and warmup_factor(None, 20.0) == 1.0
    assert warmup_factor(3, 2.5) == 1.0 and warmup_factor(1, 2.5) == pytest.approx(0.4)


def test_start_epoch_drives_the_factor(pair):
    fs, ft, _ = pair
    d = make(fs, ft)
    assert (d.weight, d.warmup_epochs, d.ce_weight, d.kd_weight) == (1.0, 20.0, 1.0, 0.0)
    assert d.warmup() == 1.0  # before any start_epoch: the full weight
    d.start_epoch(4, 240)
    assert d.warmup() == 0.2
    for bad in (-1, 1.5, True, None):
        with pytest.raises(ValueError, match="epoch"):
            d.start_epoch(bad, 240)


@pytest.mark.parametrize("change, name", [
    ({"weight": -1.0}, "weight"), ({"weight": math.inf}, "weight"),
    ({"warmup_epochs": -1.0}, "warmup_epochs"), ({"warmup_epochs": math.nan}, "warmup_epochs"),
    ({"warmup_epochs": math.inf}, "warmup_epochs"), ({"tau": 0.0}, "tau"), ({"ce_weight": -0.5}, "ce_weight"),
])
def test_bad_params_raise_naming_the_param(change, name, pair):
    with pytest.raises(ValueError, match=name):
        ReviewKD.check({**ReviewKD.defaults(), **change})
    fs, ft, _ = pair
    with pytest.raises(ValueError, match=name):
        make(fs, ft, **change)


def test_level_counts_must_agree(pair):
    fs, _, _ = pair
    g = torch.Generator().manual_seed(4)
    with pytest.raises(ValueError, match="levels"):
        make(fs, fake(g, (3, 8), [(3, 8), (2, 4)], dim=6, grad=False))
    no_preact = {k: v for k, v in fake(g, (3, 8), [(3, 8), (2, 4), (4, 2)], dim=6).items() if k != "preact_taps"}
    with pytest.raises(ValueError, match="pre-activation"):
        make(fs, no_preact)


def test_weights_table():
    assert reviewkd_weight("resnet56", "resnet20") == 0.6
    assert reviewkd_weight("resnet110", "resnet32") == 1.0
    assert reviewkd_weight("wrn_40_2", "wrn_16_2") == 5.0
    assert reviewkd_weight("resnet32x4", "resnet8x4") == 5.0
    assert reviewkd_weight("resnet110", "resnet20") == 0.6 and reviewkd_weight("vgg13", "vgg8") == 1.0
    assert not set(PUBLISHED_WEIGHTS) & set(CHOSEN_WEIGHTS)
    with pytest.raises(KeyError):
        reviewkd_weight("resnet8", "resnet8")


def test_bf16_features_give_a_float32_loss(pair):
    fs, ft, y = pair
    d = make(fs, ft)
    def cast(f):
        return {k: ([t.detach().bfloat16() for t in v] if isinstance(v, list) else v.detach().bfloat16())
                          for k, v in f.items()}
    loss = d(cast(fs), cast(ft), y)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


# ---- real networks ----------------------------------------------------------------------------------

# build_review_kd's tables (in_channels = out_channels, shallow to deep) for these students.
PAIRS = [
    ("resnet110", "resnet20", [16, 32, 64, 64], 64),
    ("resnet56", "resnet20", [16, 32, 64, 64], 64),
    ("wrn_40_2", "wrn_16_2", [32, 64, 128, 128], 128),
    ("resnet32x4", "resnet8x4", [64, 128, 256, 256], 256),
    ("vgg13", "vgg8", [128, 256, 512, 512, 512], 512),  # f1, f2, f3, f4, pooled
]


@pytest.mark.parametrize("teacher_name, student_name, channels, mid", PAIRS)
def test_adapters_of_the_real_pairs(teacher_name, student_name, channels, mid):
    """The ABFs match build_review_kd's tables, and the loss on real features trains every one."""
    torch.manual_seed(0)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 99])
    with torch.no_grad():  # features only (the students' own backward is the next test's)
        fs = build_model(student_name, 100).eval().extract(x)
        ft = build_model(teacher_name, 100).eval().extract(x)
    d = make(fs, ft, 100, weight=reviewkd_weight(teacher_name, student_name))
    assert [a.reduce[0].in_channels for a in d.abfs] == channels
    assert [a.project[0].out_channels for a in d.abfs] == channels
    assert {a.reduce[0].out_channels for a in d.abfs} == {mid}
    assert [a.attention is None for a in d.abfs] == [False] * (len(channels) - 1) + [True]
    d.start_epoch(10, 240)
    loss = d(fs, ft, y)
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in d.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.any(), name


def test_one_sgd_step_through_real_networks():
    torch.manual_seed(0)
    student, teacher = build_model("resnet8", 10), build_model("resnet14", 10).eval()
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 3, 7, 9])
    with torch.no_grad():
        probe_s, ft = student.eval().extract(x[:2]), teacher.extract(x)
    student.train()
    d = make(probe_s, teacher.extract(x[:2]), 10, weight=0.6)
    assert [a.project[0].out_channels for a in d.abfs] == [16, 32, 64, 64]
    d.start_epoch(3, 240)
    opt = torch.optim.SGD([*student.parameters(), *d.parameters()], lr=0.1, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    before = [p.detach().clone() for p in [*student.parameters(), *d.parameters()]]
    fs = student.extract(x)
    with torch.no_grad():  # ReviewKD's shapes [1, 8, 16, 32], reversed
        sizes = [tuple(o.shape[-2:]) for o in d.fuse(fs, [(32, 32), (16, 16), (8, 8), (1, 1)])]
    assert sizes == [(32, 32), (16, 16), (8, 8), (1, 1)]
    loss = d(fs, ft, y)
    assert torch.isfinite(loss)
    opt.zero_grad()
    loss.backward()
    for name, p in d.named_parameters():
        assert p.grad is not None and p.grad.any(), name
    opt.step()
    for b, a in zip(before, [*student.parameters(), *d.parameters()]):
        assert not torch.equal(b, a)
    assert all(k.startswith("abfs.") for k in d.state_dict())  # the adapters go into the checkpoint
