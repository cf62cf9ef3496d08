"""Methods with a pre-training stage (AB, FT, FSP) across the package: the stage's SGD moving exactly
the stage's modules, the models' pre-activation taps, and the trainer's stage (killed mid-stage +
resumed == uninterrupted, fused == apart). Each loss against its hand-written float64 formula is in
test_ab.py, test_fsp.py and test_ft.py, the shared defaults in test_stage.py."""


import pytest
import torch
import torch.nn.functional as F
from torchvision.models.shufflenetv2 import channel_shuffle

from benchmark.engine import config as C
from benchmark.engine.distillers import make_distiller
from benchmark.engine.execution import ExecOptions
from benchmark.engine.models import build_model
from benchmark.engine.train import train_run, train_runs
from benchmark.store.layout import Store
from tests.helpers import same_result, small_feature_run, teacher_checkpoint

# ---- losses against hand-written formulas ----------------------------------------------------


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
