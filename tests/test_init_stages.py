"""Methods with a pre-training stage (AB, FT, FSP): each loss against a hand-written float64
formula, the stage's SGD moving exactly the stage's modules, the models' pre-activation taps,
and the trainer's stage (killed mid-stage + resumed == uninterrupted, fused == apart)."""


import pytest
import torch
import torch.nn.functional as F
from torchvision.models.shufflenetv2 import channel_shuffle

from benchmark.catalog.profiles import SMOKE_STAGE_LR_SCALE, scale_loss_params
from benchmark.engine import config as C
from benchmark.engine.distillers import make_distiller, resolve_params
from benchmark.engine.distillers.base import feature_modules
from benchmark.engine.distillers.fsp import fsp_matrix
from benchmark.engine.execution import ExecOptions
from benchmark.engine.models import build_model
from benchmark.engine.train import train_run, train_runs
from benchmark.store.layout import Store
from tests.helpers import same_result, small_feature_run, teacher_checkpoint

DT = torch.float64


def grads_equal(value, ref, inputs):
    assert value.item() == pytest.approx(ref.item(), rel=1e-9, abs=1e-12)
    for a, b in zip(torch.autograd.grad(value, inputs, retain_graph=True),
                    torch.autograd.grad(ref, inputs, retain_graph=True)):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-10)


def maps(g, channels, sides, n=3, grad=True):
    return [torch.randn(n, c, s, s, generator=g, dtype=DT).requires_grad_(grad) for c, s in zip(channels, sides)]


def fake(stages, stem, n=3):
    return {"logits": torch.zeros(n, 5, dtype=DT), "penultimate": torch.zeros(n, 4, dtype=DT),
            "stages": stages, "taps": [stem, *stages], "preact_taps": [stem, *stages]}


# ---- losses against hand-written formulas ----------------------------------------------------


def test_ab_alternative_l2_with_layer_weights():
    g = torch.Generator().manual_seed(0)
    s_maps, t_maps = maps(g, (2, 3, 4), (4, 2, 2)), maps(g, (2, 3, 4), (4, 2, 2), grad=False)
    stem = torch.zeros(3, 2, 4, 4, dtype=DT)
    d = make_distiller("ab", fake(s_maps, stem), fake(t_maps, stem), 5, margin=0.5).double()
    assert all(isinstance(c, torch.nn.Identity) for c in d.connectors)  # same shapes: no connector
    # Heo Eq. 5 rewritten: below a positive teacher neuron relu(m - s)^2, above a non-positive one relu(s + m)^2
    per_layer = [torch.where(t > 0, F.relu(0.5 - s) ** 2, F.relu(s + 0.5) ** 2).sum() for s, t in zip(s_maps, t_maps)]
    ref = (per_layer[0] / 4 + per_layer[1] / 2 + per_layer[2]) / 3 * 3 / 1000
    grads_equal(d.stage_loss(fake(s_maps, stem), fake(t_maps, stem), torch.zeros(3)), ref, s_maps)


def test_fsp_matrix_and_loss():
    g = torch.Generator().manual_seed(1)
    bottom, top = maps(g, (2, 3), (4, 2))
    ref = torch.zeros(3, 3, 2, dtype=DT)
    pooled = bottom.reshape(3, 2, 2, 2, 2, 2).mean(dim=(3, 5))  # 4x4 -> 2x2 average pool
    for b in range(3):
        for i in range(3):
            for j in range(2):
                ref[b, i, j] = (top[b, i] * pooled[b, j]).sum() / 4
    grads_equal(fsp_matrix(bottom, top).sum(), ref.sum(), [bottom, top])
    torch.testing.assert_close(fsp_matrix(bottom, top), ref)

    s_maps, t_maps = maps(g, (2, 2, 3), (4, 4, 2)), maps(g, (2, 2, 3), (4, 4, 2), grad=False)
    d = make_distiller("fsp", fake(s_maps[1:], s_maps[0]), fake(t_maps[1:], t_maps[0]), 5)
    loss = d.stage_loss(fake(s_maps[1:], s_maps[0]), fake(t_maps[1:], t_maps[0]), None)
    ref = sum(((fsp_matrix(a, b) - fsp_matrix(c, e)) ** 2).mean()
              for a, b, c, e in zip(s_maps[:-1], s_maps[1:], t_maps[:-1], t_maps[1:]))
    grads_equal(loss, ref, s_maps)


def test_fsp_needs_equal_channels():
    g = torch.Generator().manual_seed(2)
    s, t = maps(g, (2, 2, 3), (4, 4, 2)), maps(g, (2, 4, 3), (4, 4, 2))
    with pytest.raises(ValueError, match="equal channel counts"):
        make_distiller("fsp", fake(s[1:], s[0]), fake(t[1:], t[0]), 5)


def test_ft_factor_loss_and_frozen_paraphraser():
    g = torch.Generator().manual_seed(3)
    (f_s,), (f_t,) = maps(g, (3,), (4,)), maps(g, (4,), (2,), grad=False)
    stem = torch.zeros(3, 2, 4, 4, dtype=DT)
    fs, ft = fake([f_s], stem), fake([f_t], stem)
    torch.manual_seed(0)
    d = make_distiller("ft", fs, ft, 5).double()
    assert d.paraphraser.encoder[-2].out_channels == 2 and d.translator[-2].num_features == 2  # k = 0.5 of 4
    u = d.translator(f_s)                                   # (3, 2, 4, 4): pooled to the teacher's 2x2
    u = u.reshape(3, 2, 2, 2, 2, 2).mean(dim=(3, 5))
    v = d.paraphraser.encoder(f_t)
    a = (u ** 2).mean(1).flatten(1)
    b = (v ** 2).mean(1).flatten(1)
    ref = (a / a.norm(dim=1, keepdim=True) - b / b.norm(dim=1, keepdim=True)).abs().mean()
    loss = d.feature_loss(fs, ft, None, None)
    grads_equal(loss, ref, [f_s])
    loss.backward()
    assert all(p.grad is None for p in d.paraphraser.parameters())       # fixed after its stage
    assert all(p.grad is not None for p in d.translator.parameters())
    rec = d.paraphraser.decoder(d.paraphraser.encoder(f_t))
    assert d.stage_loss(None, ft, None).item() == pytest.approx(((rec - f_t) ** 2).mean().item(), rel=1e-12)


def test_published_defaults_and_profile_scaling():
    for name, w in {"ab": 1.0, "ft": 200.0, "fsp": 50.0}.items():
        p = resolve_params(name)
        lr = None if name == "ft" else 0.05  # FT: RepDistiller's rule on the student (test below)
        assert (p["weight"], p["ce_weight"], p["kd_weight"], p["init_epochs"], p["init_lr"]) == (w, 1.0, 0.0, 30, lr)
    assert scale_loss_params({"name": "ab"}, "smoke")["init_epochs"] == 1
    assert scale_loss_params({"name": "ft", "init_epochs": 30}, "quick")["init_epochs"] == 8  # 30 / 4, rounded
    assert scale_loss_params({"name": "ft", "init_epochs": 30}, "paper") == {"name": "ft", "init_epochs": 30}
    assert scale_loss_params({"name": "kd", "tau": 4.0}, "smoke") == {"name": "kd", "tau": 4.0}
    assert scale_loss_params({"name": "reviewkd", "warmup_epochs": 20.0}, "quick")["warmup_epochs"] == 5.0
    assert scale_loss_params({"name": "reviewkd"}, "smoke")["warmup_epochs"] == 0.0
    # smoke's stand-in teachers: the stage rate shrinks (default or given); quick keeps it
    assert scale_loss_params({"name": "fsp"}, "smoke")["init_lr"] == pytest.approx(0.05 * SMOKE_STAGE_LR_SCALE)
    assert scale_loss_params({"name": "ft", "init_lr": 0.01}, "smoke")["init_lr"] == pytest.approx(1e-4)
    assert "init_lr" not in scale_loss_params({"name": "ft"}, "quick")
    assert "init_lr" not in scale_loss_params({"name": "reviewkd"}, "smoke")
    with pytest.raises(ValueError, match="init_epochs must be >= 0"):
        resolve_params("fsp", init_epochs=-1)


@pytest.mark.parametrize("student, lr", [("resnet8", 0.01), ("resnet8x4", 0.01), ("wrn_16_1", 0.01), ("vgg8", 0.05),
                                         ("mobilenetv2", 0.01), ("shufflev1", 0.01), ("resnet50_cifar", 0.05)])
def test_ft_stage_rate_is_repdistillers_for_the_student(student, lr):
    """helper/pretrain.py l. 22-27: 0.01 for CIFAR ResNet/WRN students, else --learning_rate, which
    train_student.py l. 93-94 sets to 0.01 for MobileNetV2/ShuffleV1/ShuffleV2 (0.05 by default)."""
    torch.manual_seed(0)
    s, t = build_model(student, 10).eval(), build_model("resnet8", 10).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        probe_s, probe_t = s.extract(x), t.extract(x)
    (stage,) = make_distiller("ft", probe_s, probe_t, 10).pretrain_stages(s)
    assert stage.lr == lr
    (given,) = make_distiller("ft", probe_s, probe_t, 10, init_lr=0.2).pretrain_stages(s)
    assert given.lr == 0.2


# ---- the models' pre-activation taps -----------------------------------------------------


@pytest.mark.parametrize("name", ["resnet8", "vgg8", "wrn_16_2", "resnet50_cifar", "shufflev1", "shufflev2",
                                  "mobilenetv2"])
def test_preact_taps_are_the_maps_before_their_relu(name):
    torch.manual_seed(0)
    m = build_model(name, 10).eval()
    f = m.extract(torch.randn(2, 3, 32, 32))
    assert torch.equal(f["preact_taps"][0], f["taps"][0])  # the stem stays as tapped (RepDistiller)
    if name.startswith("wrn"):  # RepDistiller: the next BatchNorm's output
        bns = [m.block2.layer[0].bn1, m.block3.layer[0].bn1, m.bn1]
        for pre, tap, bn in zip(f["preact_taps"][1:], f["taps"][1:], bns):
            torch.testing.assert_close(pre, bn(tap))
    elif name == "mobilenetv2":  # its blocks end in a linear bottleneck: preact=True changes nothing
        assert all(torch.equal(p, t) for p, t in zip(f["preact_taps"], f["taps"]))
    elif name == "shufflev2":  # RepDistiller's ShuffleV2 preact is not channel-shuffled
        for pre, tap in zip(f["preact_taps"][1:], f["taps"][1:]):
            assert (pre < 0).any() and torch.equal(channel_shuffle(F.relu(pre), 2), tap)
    else:
        for pre, tap in zip(f["preact_taps"][1:], f["taps"][1:]):
            assert (pre < 0).any() and torch.equal(F.relu(pre), tap)
    assert torch.equal(m(torch.zeros(1, 3, 32, 32)), m.extract(torch.zeros(1, 3, 32, 32))["logits"])


# ---- one stage step through real networks --------------------------------------------------


@pytest.mark.parametrize("name", ["ab", "ft", "fsp"])
def test_stage_step_moves_exactly_the_stage_modules(name):
    torch.manual_seed(0)
    student, teacher = build_model("resnet8", 10), build_model("resnet14", 10).eval()
    x, y = torch.randn(4, 3, 32, 32), torch.arange(4)
    with torch.no_grad():
        probe_s, probe_t, ft = student.eval().extract(x[:2]), teacher.extract(x[:2]), teacher.extract(x)
    d = make_distiller(name, probe_s, probe_t, 10)
    (stage,) = d.pretrain_stages(student)
    trained = {id(p) for m in stage.modules for p in m.parameters()}
    snapshot = {id(p): p.detach().clone() for p in [*student.parameters(), *d.parameters()]}
    opt = torch.optim.SGD([p for m in stage.modules for p in m.parameters()], lr=0.05, momentum=0.9)
    loss = stage.loss(student.train().extract(x) if stage.needs_student else None, ft, y)
    assert torch.isfinite(loss) and loss > 0
    opt.zero_grad()
    loss.backward()
    opt.step()
    for p in [*student.parameters(), *d.parameters()]:
        moved = not torch.equal(snapshot[id(p)], p)
        # FT's stage reads the teacher only; AB's connectors are identities for resnet8/resnet14
        assert moved == (id(p) in trained), (name, p.shape)
    assert not any(id(p) in trained for p in student.fc.parameters())  # the classifier is not pre-trained


# RepDistiller's get_feat_modules of each student family (models/*.py): what AB's and FSP's
# stage trains. WRN leaves out its final bn1, MobileNetV2 its conv2, ShuffleV2 its conv2/bn2.
FEAT_MODULES = {
    "wrn_16_1": ["conv1", "block1", "block2", "block3"],
    "mobilenetv2": ["conv1", "blocks"],
    "shufflev2": ["conv1", "bn1", "layer1", "layer2", "layer3"],
    "shufflev1": ["conv1", "bn1", "layer1", "layer2", "layer3"],
    "resnet8": ["conv1", "bn1", "layer1", "layer2", "layer3"],
    "vgg8": ["block0", "block1", "block2", "block3", "block4"],
    "resnet50_cifar": ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"],
}


@pytest.mark.parametrize("name", sorted(FEAT_MODULES))
def test_feature_modules_are_repdistillers(name):
    m = build_model(name, 10)
    names = {id(mod): n for n, mod in m.named_children()}
    assert [names[id(mod)] for mod in feature_modules(m)] == FEAT_MODULES[name]


def test_wrn_stage_leaves_the_final_bn_untrained_and_in_eval_mode():
    """AB with a WRN student (RepDistiller: bn1 is outside get_feat_modules, so the stage neither
    trains it nor, the student being in eval mode, moves its running statistics)."""
    torch.manual_seed(0)
    student, teacher = build_model("wrn_16_1", 10), build_model("wrn_16_2", 10).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        probe_s, probe_t, ft = student.eval().extract(x[:2]), teacher.extract(x[:2]), teacher.extract(x)
    (stage,) = make_distiller("ab", probe_s, probe_t, 10).pretrain_stages(student)
    trained = {id(p) for m in stage.modules for p in m.parameters()}
    assert not any(id(p) in trained for p in student.bn1.parameters())
    student.eval()  # the trainer's stage: the student in eval mode, the stage's modules in train mode
    for m in stage.modules:
        m.train()
    bn_before = {k: v.clone() for k, v in student.bn1.state_dict().items()}
    inner_before = student.block3.layer[0].bn1.running_mean.clone()
    opt = torch.optim.SGD([p for m in stage.modules for p in m.parameters()], lr=0.05, momentum=0.9)
    stage.loss(student.extract(x), ft, torch.arange(4)).backward()
    opt.step()
    assert all(torch.equal(v, student.bn1.state_dict()[k]) for k, v in bn_before.items())
    assert not torch.equal(inner_before, student.block3.layer[0].bn1.running_mean)  # trained BNs move


# ---- the trainer's stage -----------------------------------------------------------------


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    return teacher_checkpoint(tmp_path_factory.mktemp("teacher"), "resnet14", 7)


def small(teacher, loss):
    return small_feature_run(teacher, loss, epochs=1)


same = same_result


def lines_of(store, rid):
    return [{k: v for k, v in m.items() if k != "time_s"} for m in store.metrics(rid)]


@pytest.mark.parametrize("loss", [{"name": "ab", "init_epochs": 2}, {"name": "ft", "init_epochs": 2}])
def test_killed_in_the_stage_and_resumed_equals_uninterrupted(teacher_file, tmp_path, loss):
    cfg = small(teacher_file, loss)
    seen = []
    full = train_run(cfg, Store(tmp_path / "full"), ExecOptions(on_epoch=seen.append))
    assert full["status"] == "done", full.get("reason")
    assert [(m.get("stage"), m["epoch"]) for m in seen] == [(seen[0]["stage"], 1), (seen[0]["stage"], 2), (None, 1)]
    assert [h["epoch"] for h in full["init_stages"]["history"]] == [1, 2]

    class Stop(Exception):
        pass

    def hook(m):
        if m.get("stage") and m["epoch"] == 1:
            raise Stop
    store = Store(tmp_path / "cut")
    with pytest.raises(Stop):
        train_run(cfg, store, ExecOptions(on_epoch=hook))
    resumed = train_run(cfg, store, ExecOptions())
    assert resumed["init_stages"]["resumed_from_init_epoch"] == 1 and same(resumed, full)
    # metrics.jsonl: the stage's epochs (its loss as the term "stage"), then the main epoch's terms
    got, want = (lines_of(s, full["id"]) for s in (store, Store(tmp_path / "full")))
    assert got == want
    assert [m.get("stage") for m in got] == [seen[0]["stage"]] * 2 + [None]
    assert all(m["loss_stage"] == m["train_loss"] and m["grad_norm"] > 0 for m in got[:2])
    assert {"loss_ce", "loss_feature", "grad_norm", "nonfinite_frac"} <= set(got[2])
    assert resumed["init_stages"]["history"][1]["train_loss"] == full["init_stages"]["history"][1]["train_loss"]


def test_stage_students_fused_equal_apart(teacher_file, tmp_path):
    cfgs = [small(teacher_file, loss) for loss in ({"name": "kd"}, {"name": "fsp", "init_epochs": 1})]
    together = train_runs(cfgs, Store(tmp_path / "fused"), ExecOptions())
    for cfg in cfgs:
        alone = train_run(cfg, Store(tmp_path / "apart"), ExecOptions())
        assert same(together[alone["id"]], alone)
        assert lines_of(Store(tmp_path / "fused"), alone["id"]) == lines_of(Store(tmp_path / "apart"), alone["id"])
    # and the stage changed the student: the same run without it ends elsewhere
    no_stage = train_run(small(teacher_file, {"name": "fsp", "init_epochs": 0}), Store(tmp_path / "apart"), ExecOptions())
    assert no_stage["weights_digest"] != together[C.run_id(cfgs[1])]["weights_digest"]
