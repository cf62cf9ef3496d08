"""Feature distillers: each loss against a hand-written float64 formula (value and gradient),
one real SGD step through a teacher/student pair, config validation, and the trainer
(fused == apart, interrupted + resumed == uninterrupted, with the adapters in the checkpoint)."""

import math

import pytest
import torch
import torch.nn.functional as F

from benchmark.engine import config as C
from benchmark.engine.accel import Accel
from benchmark.engine.distillers import distiller_names, make_distiller, resolve_params
from benchmark.engine.execution import ExecOptions
from benchmark.engine.models import build_model
from benchmark.engine.pipeline import Augmentation, TensorPipeline
from benchmark.engine.train import make_optimizer, train_run, train_runs
from benchmark.errors import BadInput
from benchmark.store.layout import Store
from tests.helpers import (
    pool_to,
    ref_at,
    ref_ce,
    same_result,
    small_feature_run,
    stop_after_epoch,
    teacher_checkpoint,
    tiny,
)

N = 4
DT = torch.float64


def feats(g, channels=(3, 4, 5), sides=(8, 4, 2), dim=6, classes=5, stem=(3, 8)):
    """A fake extract() dict in float64 whose tensors require grad."""
    def t(*shape):
        return (torch.randn(*shape, generator=g, dtype=DT)).requires_grad_()
    stages = [t(N, c, s, s) for c, s in zip(channels, sides)]
    return {"logits": t(N, classes), "penultimate": t(N, dim), "stages": stages,
            "taps": [t(N, stem[0], stem[1], stem[1]), *stages]}


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    fs = feats(g)
    ft = feats(g, channels=(4, 6, 7), sides=(8, 4, 2), dim=9)
    for v in ft.values():  # the teacher is fixed
        for x in (v if isinstance(v, list) else [v]):
            x.requires_grad_(False)
    return fs, ft, torch.tensor([0, 3, 4, 1])


def build(name, fs, ft, **params):
    torch.manual_seed(1)
    d = make_distiller(name, fs, ft, 5, train_labels=torch.arange(40) % 5, **params).double()
    return d


def only_feature(**extra):
    return dict(ce_weight=0.0, kd_weight=0.0, weight=1.0, **extra)


def check(value, ref, inputs):
    """Same value and same gradient w.r.t. every input (independent formulas, float64)."""
    assert value.item() == pytest.approx(ref.item(), rel=1e-9, abs=1e-12)
    g1 = torch.autograd.grad(value, inputs, retain_graph=True, allow_unused=True)
    g2 = torch.autograd.grad(ref, inputs, retain_graph=True, allow_unused=True)
    for a, b in zip(g1, g2):
        if a is None or b is None:
            assert a is None and b is None
        else:
            torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-10)


# ---- hand-written references (plain loops over samples / positions) -----------------------


def ref_sp(f_s, f_t):
    def g(f):
        rows = []
        for i in range(N):
            r = torch.stack([(f[i] * f[j]).sum() for j in range(N)])
            rows.append(r / r.norm())
        return torch.stack(rows)
    return ((g(f_s) - g(f_t)) ** 2).sum() / N**2


def ref_nst(f_s, f_t):
    side = min(f_s.shape[-1], f_t.shape[-1])
    s, t = pool_to(f_s, side).flatten(2), pool_to(f_t, side).flatten(2)
    total = 0
    for i in range(N):
        si = [v / v.norm() for v in s[i]]
        ti = [v / v.norm() for v in t[i]]
        def k(a, b):
            return sum((x @ y) ** 2 for x in a for y in b) / (len(a) * len(b))
        total = total + k(ti, ti) + k(si, si) - 2 * k(si, ti)
    return total / N


def huber(a, b):
    d = (a - b).abs()
    return torch.where(d < 1, 0.5 * d**2, d - 0.5).mean()


def ref_rkd(s, t, w_d=25.0, w_a=50.0):
    def dist(x):
        d = torch.stack([torch.stack([(x[i] - x[j]).norm() if i != j else x.new_zeros(()) for j in range(N)])
                         for i in range(N)])
        return d / (d.sum() / (N * N - N))

    def ang(x):
        out = []
        for j in range(N):
            for i in range(N):
                for k in range(N):
                    u, v = x[i] - x[j], x[k] - x[j]
                    nu = u / u.norm() if i != j else torch.zeros_like(u)
                    nv = v / v.norm() if k != j else torch.zeros_like(v)
                    out.append(nu @ nv)
        return torch.stack(out)
    return w_d * huber(dist(s), dist(t).detach()) + w_a * huber(ang(s), ang(t).detach())


def ref_pkt(s, t, eps=1e-7):
    def p(x):
        x = torch.stack([v / (v.norm() + eps) for v in x])
        k = torch.stack([torch.stack([(x[i] @ x[j] + 1) / 2 for j in range(N)]) for i in range(N)])
        return torch.stack([r / r.sum() for r in k])
    ps, pt = p(s), p(t)
    return sum(pt[i, j] * math.log((pt[i, j].item() + eps)) - pt[i, j] * torch.log(ps[i, j] + eps)
               for i in range(N) for j in range(N)) / N**2


def ref_kd(z_s, z_t, tau):
    total = 0
    for i in range(N):
        p_t = torch.softmax(z_t[i] / tau, 0)
        log_p_s = z_s[i] / tau - torch.logsumexp(z_s[i] / tau, 0)
        total = total + sum(p_t[c] * (torch.log(p_t[c]) - log_p_s[c]) for c in range(len(p_t)))
    return total / N * tau**2


def bn_relu(h, bn):
    mean = h.mean(dim=(0, 2, 3), keepdim=True)
    var = ((h - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
    h = (h - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    return torch.clamp(h, min=0)


# ---- value and gradient against the references ---------------------------------------------


def test_at(pair):
    fs, ft, y = pair
    d = build("at", fs, ft, **only_feature())
    ref = sum(ref_at(s, t) for s, t in zip(fs["stages"], ft["stages"]))
    check(d(fs, ft, y), ref, fs["stages"])


def test_at_pools_the_larger_map():
    g = torch.Generator().manual_seed(3)
    fs, ft = feats(g, sides=(8, 4, 4)), feats(g, channels=(2, 2, 2), sides=(4, 4, 2))
    d = build("at", fs, ft, **only_feature())
    ref = sum(ref_at(s, t) for s, t in zip(fs["stages"], ft["stages"]))
    check(d(fs, ft, None), ref, fs["stages"])


def test_sp(pair):
    fs, ft, y = pair
    d = build("sp", fs, ft, **only_feature())
    check(d(fs, ft, y), ref_sp(fs["stages"][-1], ft["stages"][-1]), fs["stages"])


def test_nst(pair):
    fs, ft, y = pair
    d = build("nst", fs, ft, **only_feature())
    ref = sum(ref_nst(s, t) for s, t in zip(fs["stages"], ft["stages"]))
    check(d(fs, ft, y), ref, fs["stages"])


def test_rkd(pair):
    fs, ft, y = pair
    d = build("rkd", fs, ft, **only_feature())
    check(d(fs, ft, y), ref_rkd(fs["penultimate"], ft["penultimate"]), [fs["penultimate"]])


def test_pkt(pair):
    fs, ft, y = pair
    d = build("pkt", fs, ft, **only_feature())
    check(d(fs, ft, y), ref_pkt(fs["penultimate"], ft["penultimate"]), [fs["penultimate"]])


def test_fitnet_with_the_total_loss(pair):
    fs, ft, y = pair
    # student stage-2 map is 4x4, teacher's 4x4: a 1x1 conv regressor; CE 0.3, KD 0.7 at tau 2
    d = build("fitnet", fs, ft, ce_weight=0.3, kd_weight=0.7, tau=2.0, weight=100.0)
    conv = d.regressor.conv
    assert conv.kernel_size == (1, 1) and conv.out_channels == 6
    h = bn_relu(F.conv2d(fs["stages"][1], conv.weight, conv.bias), d.regressor.bn)
    hint = ((h - ft["stages"][1]) ** 2).sum() / h.numel()
    ref = 0.3 * ref_ce(fs["logits"], y) + 0.7 * ref_kd(fs["logits"], ft["logits"], 2.0) + 100.0 * hint
    check(d(fs, ft, y), ref, [fs["logits"], fs["stages"][1], conv.weight])


def test_fitnet_regressor_shapes():
    g = torch.Generator().manual_seed(0)
    s = feats(g, sides=(8, 8, 4))
    assert build("fitnet", s, feats(g, sides=(8, 4, 2))).regressor.conv.stride == (2, 2)  # 8 -> 4
    up = build("fitnet", s, feats(g, sides=(8, 16, 2))).regressor.conv
    assert isinstance(up, torch.nn.ConvTranspose2d)  # 8 -> 16
    assert build("fitnet", s, feats(g, sides=(8, 6, 2))).regressor.conv.kernel_size == (3, 3)  # 8 -> 6
    # 8 -> 10 (smaller, not half): 1x1 conv, the teacher map pooled down to 8x8 in the loss
    t = feats(g, sides=(8, 10, 2))
    d = build("fitnet", s, t, **only_feature())
    conv = d.regressor.conv
    assert conv.kernel_size == (1, 1)
    h = bn_relu(F.conv2d(s["stages"][1], conv.weight, conv.bias), d.regressor.bn)
    target = F.adaptive_avg_pool2d(t["stages"][1], 8)
    check(d(s, t, None), ((h - target) ** 2).sum() / h.numel(), [s["stages"][1]])


@pytest.mark.parametrize("embed", ["linear", "normalized"])
def test_cc(pair, embed):
    """linear: RepDistiller's LinearEmbed (train_student.py l. 211-214); normalized: its Embed."""
    fs, ft, y = pair
    d = build("cc", fs, ft, **only_feature(feat_dim=3, embed=embed))
    unit = (lambda z: z / z.norm(dim=1, keepdim=True)) if embed == "normalized" else (lambda z: z)
    def e(lin, x):
        return unit(x @ lin.weight.t() + lin.bias)
    diff = (e(d.embed_s.linear, fs["penultimate"]) - e(d.embed_t.linear, ft["penultimate"])).abs()
    ref = sum((diff[i] * diff[i + 1]).sum() for i in range(N - 1)) / (N - 1)
    check(d(fs, ft, y), ref, [fs["penultimate"], d.embed_s.linear.weight, d.embed_t.linear.weight])


def test_cc_defaults_to_repdistillers_linear_embedding():
    assert resolve_params("cc")["embed"] == "linear"
    with pytest.raises(ValueError, match="embed must be one of linear, normalized"):
        resolve_params("cc", embed="l2")


def test_vid(pair):
    fs, ft, y = pair
    d = build("vid", fs, ft, **only_feature())
    total = 0
    for layer, s, t in zip(d.layers, fs["stages"], ft["stages"]):
        w = [m.weight for m in layer.regressor if isinstance(m, torch.nn.Conv2d)]
        mu = F.conv2d(F.relu(F.conv2d(F.relu(F.conv2d(s, w[0])), w[1])), w[2])
        var = torch.log1p(torch.exp(layer.alpha)) + 1e-5
        assert var[0].item() == pytest.approx(5.0)  # initial variance
        nll = 0.5 * ((mu - t) ** 2 / var.view(1, -1, 1, 1) + torch.log(var).view(1, -1, 1, 1))
        total = total + nll.sum() / nll.numel()
    check(d(fs, ft, y), total, [*fs["stages"], d.layers[0].alpha])


def test_crd_nce_and_memory(pair):
    fs, ft, y = pair
    labels = torch.arange(40) % 5
    d = build("crd", fs, ft, **only_feature(feat_dim=3, nce_k=7, nce_t=0.5, nce_m=0.25))
    index = torch.tensor([0, 13, 24, 6])  # labels 0, 3, 4, 1 = y
    bank_s, bank_t = d.memory_s.clone(), d.memory_t.clone()
    torch.manual_seed(5)
    value = d(fs, ft, y, index)
    torch.manual_seed(5)
    neg = d.negatives(y)
    assert neg.shape == (N, 7) and (labels[neg] != y[:, None]).all()
    def emb(lin, x):
        return (lambda z: z / z.norm(dim=1, keepdim=True))(x @ lin.weight.t() + lin.bias)
    e_s, e_t = emb(d.embed_s.linear, fs["penultimate"]), emb(d.embed_t.linear, ft["penultimate"])
    idx = torch.cat([index[:, None], neg], 1)

    def nce(e, bank):
        h = torch.stack([torch.stack([torch.exp(bank[j] @ e[i] / 0.5) for j in idx[i]]) for i in range(N)])
        z = h.detach().mean() * 40  # normaliser fixed on this (first) batch
        h = h / z
        pn = 7 / 40
        return -sum(torch.log(h[i, 0] / (h[i, 0] + pn + 1e-7)) + sum(torch.log(pn / (h[i, j] + pn + 1e-7))
                                                                     for j in range(1, 8)) for i in range(N)) / N
    ref = nce(e_s, bank_t) + nce(e_t, bank_s)
    check(value, ref, [fs["penultimate"], d.embed_t.linear.weight])
    # momentum update of both banks at the positives, renormalised; other rows untouched
    new = bank_s[index] * 0.25 + e_s.detach() * 0.75
    torch.testing.assert_close(d.memory_s[index], new / new.norm(dim=1, keepdim=True))
    untouched = torch.ones(40, dtype=torch.bool)
    untouched[index] = False
    assert torch.equal(d.memory_t[untouched], bank_t[untouched])


def test_crd_negatives_are_drawn_without_replacement_from_other_classes(pair):
    """RepDistiller (dataset/cifar100.py l. 166-168): K distinct other-class indices per row,
    uniform; with replacement only for a class with fewer than K other-class samples."""
    fs, ft, _ = pair
    labels = torch.arange(40) % 5  # 8 per class: 32 others per row
    d = build("crd", fs, ft, **only_feature(feat_dim=3, nce_k=7))
    y = torch.arange(2000) % 5
    torch.manual_seed(0)
    neg = d.negatives(y)
    assert neg.shape == (2000, 7)
    assert all(len(set(row.tolist())) == 7 for row in neg)  # distinct in every row
    assert (labels[neg] != y[:, None]).all()  # never the positive's class, hence never its index
    # uniform: each other-class sample appears in a row of class c with probability 7/32
    # (87.5 of c's 400 rows, binomial std 8.3)
    hits = torch.zeros(5, 40)
    for c in range(5):
        hits[c] = torch.bincount(neg[y == c].flatten(), minlength=40).float()
    others = labels[None, :] != torch.arange(5)[:, None]
    assert (hits[~others] == 0).all()
    assert hits[others].min() > 87.5 - 5 * 8.3 and hits[others].max() < 87.5 + 5 * 8.3
    # more negatives than other-class samples: drawn with replacement, still other classes only
    big = build("crd", fs, ft, **only_feature(feat_dim=3, nce_k=50))
    neg = big.negatives(torch.tensor([0, 3]))
    assert neg.shape == (2, 50) and (labels[neg] != torch.tensor([0, 3])[:, None]).all()
    assert len(set(neg[0].tolist())) <= 32


def test_sckd_drops_a_term_whose_gradient_conflicts_with_ce():
    torch.manual_seed(0)
    student = build_model("resnet8", 5).double()
    x = torch.randn(N, 3, 32, 32, dtype=DT)
    y = torch.tensor([0, 3, 4, 1])
    fs = student.extract(x)
    ft = {k: (v.detach() if torch.is_tensor(v) else [t.detach() for t in v]) for k, v in fs.items()}
    d = make_distiller("sckd", fs, ft, 5, tau=1.0).double()
    d.attach(student)
    params = [p for p in student.parameters()]
    ce = ref_ce(fs["logits"], y)
    def g(v):
        return torch.autograd.grad(v, params, retain_graph=True, allow_unused=True)
    def dot(a, b):
        return sum((u * v).sum() for u, v in zip(a, b) if u is not None and v is not None)
    for name, z_t in (("agrees", 20.0 * F.one_hot(y, 5).double()), ("conflicts", 20.0 * F.one_hot((y + 1) % 5, 5).double())):
        ft_case = dict(ft, logits=z_t)
        kd = ref_kd(fs["logits"], z_t, 1.0)
        conv = d.regressor.conv
        h = bn_relu(F.conv2d(fs["taps"][2], conv.weight, conv.bias), d.regressor.bn)
        hint = ((h - ft["taps"][2]) ** 2).sum() / h.numel()
        use_kd, use_hint = dot(g(kd), g(ce)) > 0, dot(g(hint), g(ce)) > 0
        assert use_kd == (name == "agrees")
        ref = 0.5 * ce + (0.5 * kd if use_kd else 0) + (100.0 * hint if use_hint else 0)
        assert d(fs, ft_case, y).item() == pytest.approx(ref.item(), rel=1e-9)


# ---- registry and config -------------------------------------------------------------------


def test_published_defaults():
    weights = {"fitnet": 100, "at": 1000, "sp": 3000, "cc": 0.02, "vid": 1, "rkd": 1, "pkt": 30000,
               "nst": 50, "crd": 0.8}
    for name, w in weights.items():
        p = resolve_params(name)
        assert (p["weight"], p["ce_weight"], p["kd_weight"]) == (w, 1.0, 0.0), name
    crd = resolve_params("crd")
    assert (crd["feat_dim"], crd["nce_k"], crd["nce_t"], crd["nce_m"]) == (128, 16384, 0.07, 0.5)


@pytest.mark.parametrize("loss, message", [
    ({"name": "fitnet", "weight": "big"}, "weight must be a number, got 'big'"),
    ({"name": "crd", "nce_k": 1.5}, "nce_k must be an integer, got 1.5"),
    ({"name": "at", "beta": 3}, "unknown parameter"),
    ({"name": "crd", "nce_m": 2.0}, "nce_m must be <= 1, got 2.0"),
    ({"name": "fitnets"}, "feature-based: fitnet"),
])
def test_bad_loss_params_are_bad_input_naming_the_field(loss, message):
    with pytest.raises(BadInput) as err:
        C.resolve(tiny(loss=loss, teacher={"run": "0" * 16}), where="run.yaml")
    assert err.value.field == "loss" and "run.yaml" in str(err.value) and message in str(err.value)


def test_feature_loss_needs_a_teacher():
    with pytest.raises(BadInput, match="teacher"):
        C.resolve(tiny(loss={"name": "fitnet"}))


# ---- one real SGD step through a teacher/student pair ---------------------------------------


# Their adapters train in a pre-training stage (tests/test_init_stages.py, tests/test_ieat.py), or
# the method needs as many feature levels in both networks and, for overhaul, the teacher's
# BatchNorms (tests/test_reviewkd.py, tests/test_overhaul.py).
STAGED = {"ab", "ft", "fsp", "ieat", "reviewkd", "overhaul"}


@pytest.mark.parametrize("name", [n for n in distiller_names() if n not in STAGED])
def test_one_step_through_real_networks(name):
    torch.manual_seed(0)
    student, teacher = build_model("resnet8", 10), build_model("vgg8", 10).eval()
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 10
    with torch.no_grad():
        probe_s, ft = student.eval().extract(x[:2]), teacher.extract(x)
    student.train()
    params = {"nce_k": 32} if name == "crd" else {}
    d = make_distiller(name, probe_s, teacher.extract(x[:2]), 10, train_labels=torch.arange(20) % 10, **params)
    d.attach(student)
    opt = make_optimizer(torch.nn.ModuleList([student, d]), C.resolve(tiny())["recipe"])
    before = [p.detach().clone() for p in opt.param_groups[0]["params"]]
    loss = d(student.extract(x), ft, y, torch.arange(8))
    assert torch.isfinite(loss)
    opt.zero_grad()
    loss.backward()
    opt.step()
    after = opt.param_groups[0]["params"]
    assert not torch.equal(before[0], after[0])  # the student moved
    n_student = len(list(student.parameters()))
    for b, a in zip(before[n_student:], after[n_student:]):  # and every adapter too
        assert not torch.equal(b, a)


# ---- pipeline and trainer ------------------------------------------------------------------


def test_indices_do_not_change_the_batches():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (20, 8, 8, 3), dtype=torch.uint8, generator=g)
    labels = torch.arange(20) % 4
    pipe = TensorPipeline((images, labels), (images, labels), [0.5] * 3, [0.25] * 3, Augmentation(1, True), 6)
    plain = list(pipe.train_batches(3, 1))
    indexed = list(pipe.train_batches(3, 1, with_index=True))
    for (x, y), (xi, yi, idx) in zip(plain, indexed, strict=True):
        assert torch.equal(x, xi) and torch.equal(y, yi) and torch.equal(labels[idx], y)
        # the index points at the source image: un-augmented it is the image the batch was cut from
        assert idx.dtype == torch.long and len(set(idx.tolist())) == len(idx)


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    """A (randomly initialised) resnet8 teacher checkpoint: no teacher training needed."""
    return teacher_checkpoint(tmp_path_factory.mktemp("teacher"), "resnet8", 123)


def small(teacher, loss, epochs=2):
    return small_feature_run(teacher, loss, epochs)


same = same_result


@pytest.mark.parametrize("loss", [{"name": "fitnet"}, {"name": "crd", "nce_k": 16}, {"name": "overhaul", "weight": 1e-3}])
def test_interrupted_and_resumed_equals_uninterrupted(teacher_file, tmp_path, loss):
    cfg = small(teacher_file, loss)
    full = train_run(cfg, Store(tmp_path / "full"), ExecOptions())
    assert full["status"] == "done", full.get("reason")
    store = Store(tmp_path / "cut")
    stop_after_epoch(cfg, store)
    resumed = train_run(cfg, store, ExecOptions())
    assert resumed["resumed_from_epoch"] == 1 and same(resumed, full)
    def strip(s):
        return [{k: v for k, v in m.items() if k != "time_s"} for m in s.metrics(full["id"])]
    assert strip(store) == strip(Store(tmp_path / "full"))  # every term, grad norm, bad steps
    assert {"loss_ce", "loss_feature", "grad_norm", "nonfinite_frac"} <= set(strip(store)[0])


def test_fused_feature_and_logit_students_equal_apart(teacher_file, tmp_path):
    cfgs = [small(teacher_file, loss, epochs=1) for loss in
            ({"name": "kd"}, {"name": "at"}, {"name": "crd", "nce_k": 16})]
    together = train_runs(cfgs, Store(tmp_path / "fused"), ExecOptions())
    for cfg in cfgs:
        alone = train_run(cfg, Store(tmp_path / "apart"), ExecOptions())
        assert same(together[alone["id"]], alone)


def test_compile_is_recorded_as_not_applied_to_feature_runs(teacher_file, tmp_path):
    """Feature runs train through extract(), which --compile does not wrap: their execution record
    says so, while a logit run fused with them records the backend it did run."""
    cfgs = [small(teacher_file, loss, epochs=1) for loss in ({"name": "kd"}, {"name": "fitnet"})]
    results = train_runs(cfgs, Store(tmp_path), ExecOptions(accel=Accel(compile="aot_eager")))
    kd, fitnet = (results[C.run_id(cfg)] for cfg in cfgs)
    assert kd["status"] == fitnet["status"] == "done"
    assert kd["execution"]["compile"] == "aot_eager"
    assert fitnet["execution"]["compile"] == "requested aot_eager, not applied: feature taps"
    plain = train_runs(cfgs, Store(tmp_path / "plain"), ExecOptions())
    assert all(plain[C.run_id(cfg)]["execution"]["compile"] == "off" for cfg in cfgs)


def test_the_distillers_kd_term_is_repdistillers_distillkl_bit_for_bit():
    """kd_term now lives in losses.py (one KD term); its value must be the one the feature
    distillers always computed: the batch mean of KL, times tau^2 after the mean."""
    from benchmark.engine.losses import kd_term

    g = torch.Generator().manual_seed(3)
    z_s, z_t = torch.randn(16, 100, generator=g) * 5, torch.randn(16, 100, generator=g) * 5
    for tau in (1.0, 4.0, 0.5):
        log_p_s, log_p_t = F.log_softmax(z_s / tau, dim=1), F.log_softmax(z_t / tau, dim=1)
        assert torch.equal(kd_term(z_s, z_t, tau), (log_p_t.exp() * (log_p_t - log_p_s)).sum(1).mean() * tau**2)
        # RepDistiller's DistillKL: kl_div(log p_s, p_t, sum) * T^2 / batch
        ref = F.kl_div(log_p_s, F.softmax(z_t / tau, dim=1), reduction="sum") * tau**2 / z_s.shape[0]
        assert kd_term(z_s, z_t, tau).item() == pytest.approx(ref.item(), rel=1e-5)
    assert kd_term(z_s.bfloat16(), z_t.bfloat16(), 4.0).dtype == torch.float32  # upcast before the math
