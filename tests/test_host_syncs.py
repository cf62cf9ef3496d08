"""CRD, RKD and SCKD train a step with no host sync: one full step of the engine (forward, loss,
backward, SGD step, the step's bookkeeping), twice, under a dispatch mode that fails on every op
by which the host reads a device value (tests/nohostsync.py). A plain KD step is the control.

SCKD's gates are selected on the device: a gated-off term that is not finite adds exactly 0 and
sends exactly 0 gradient (where a product with 0 would be NaN)."""

import pytest
import torch
import torch.nn.functional as F

from benchmark.engine.distillers import make_distiller
from benchmark.engine.models import build_model
from benchmark.engine.teachers import load_teacher
from benchmark.engine.train import ExecOptions, TrainingRun, build_pipeline
from benchmark.store.layout import Store
from tests.helpers import small_feature_run, teacher_checkpoint
from tests.nohostsync import HostSync, NoHostSync


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    return teacher_checkpoint(tmp_path_factory.mktemp("teacher"), "resnet8", 123)


@pytest.mark.parametrize("probe", [
    lambda x: x.sum().item(),
    lambda x: bool(x.sum() > 0),
    lambda x: x[x > 0],
    lambda x: torch.nonzero(x),
    lambda x: torch.masked_select(x, x > 0),
    lambda x: x.clone().__setitem__(x > 0, 0.0),
    lambda x: torch.autograd.grad((x * x.sum().item()).sum(), x),
])
def test_the_mode_catches_host_reads(probe):
    x = torch.randn(6, requires_grad=True)
    with pytest.raises(HostSync), NoHostSync():
        probe(x)


def test_the_mode_catches_a_host_read_inside_backward():
    class ReadsInBackward(torch.autograd.Function):
        @staticmethod
        def forward(_ctx, x):
            return x.clone()

        @staticmethod
        def backward(_ctx, g):
            return g * float(g.sum())

    x = torch.randn(3, requires_grad=True)
    with NoHostSync():
        y = ReadsInBackward.apply(x).sum()
        with pytest.raises(HostSync):
            y.backward()


LOSSES = {
    "kd": {"name": "kd"},  # the control: the engine's step itself reads nothing
    "dkd": {"name": "dkd"},  # a logit loss through the Method protocol: its non-target logits by gather
    "crd": {"name": "crd", "nce_k": 16},  # a K-subset per row (Floyd)
    "crd-few-others": {"name": "crd", "nce_k": 76},  # 72 other-class samples < K: with replacement
    "crd-with-replacement": {"name": "crd", "nce_k": 16, "sampler": "with_replacement"},
    "rkd": {"name": "rkd"},
    "sckd": {"name": "sckd"},
}


@pytest.mark.parametrize("case", list(LOSSES))
def test_two_training_steps_read_nothing_on_the_host(teacher_file, tmp_path, case):
    cfg = small_feature_run(teacher_file, LOSSES[case], epochs=1)
    store, device = Store(tmp_path), torch.device("cpu")
    data = build_pipeline(cfg, ExecOptions())
    teacher = load_teacher(cfg, store, device)
    run = TrainingRun(cfg, store, device, teacher=teacher, data=data)
    run.begin_epoch(0)
    batches = data.train_batches(cfg["seed"], 0, with_index=True)
    before = [p.detach().clone() for g in run.optimizer.param_groups for p in g["params"]]
    for _, (x, y, index) in zip(range(2), batches):  # the first step sets CRD's Z and SGD's momentum
        with torch.no_grad():
            ft = teacher.extract(x)
        with NoHostSync():
            run.step(x, y, ft["logits"], ft if run.method.taps else None, index)
    after = [p.detach() for g in run.optimizer.param_groups for p in g["params"]]
    assert not torch.equal(before[0], after[0])  # it did train
    assert torch.isfinite(run.loss_sum)


def test_a_lane_of_crd_and_kd_of_two_seeds_reads_nothing_on_the_host(teacher_file, tmp_path):
    """Horizontal fusion's step (engine/horizontal.py): CRD beside KD of another seed, each row its
    own batch, two steps, no host read."""
    from benchmark.engine import config as C
    from benchmark.engine import horizontal
    from benchmark.engine.train import step_lane

    crd = small_feature_run(teacher_file, LOSSES["crd"], epochs=1)
    cfgs = [crd, C.resolve({**crd, "seed": 1, "loss": {"name": "kd"}})]
    store, device = Store(tmp_path), torch.device("cpu")
    data = build_pipeline(crd, ExecOptions())
    teacher = load_teacher(crd, store, device)
    runs = [TrainingRun(c, store, device, teacher=teacher, data=data) for c in cfgs]
    for r in runs:
        r.begin_epoch(0)
    lane = horizontal.Lane(runs)
    streams = zip(*(data.train_batches(c["seed"], 0, with_index=True) for c in cfgs))
    before = [p.detach().clone() for p in lane.params.values()]
    for _, batches in zip(range(2), streams):
        inputs = []
        for x, y, index in batches:
            with torch.no_grad():
                ft = teacher.extract(x)
            inputs.append((x, y, index, ft["logits"], ft))
        with NoHostSync():
            step_lane(lane, inputs, 0.0)
    assert not torch.equal(before[0], next(iter(lane.params.values())))  # it did train
    assert all(torch.isfinite(r.loss_sum) for r in runs)


# ---- SCKD: a gated-off term that is not finite --------------------------------------------


def sckd_case(seed=0):
    torch.manual_seed(seed)
    student = build_model("resnet8", 5).double()
    x, y = torch.randn(4, 3, 32, 32, dtype=torch.float64), torch.tensor([0, 3, 4, 1])
    fs = student.extract(x)
    ft = {k: (v.detach() if torch.is_tensor(v) else [t.detach() for t in v]) for k, v in fs.items()}
    d = make_distiller("sckd", fs, ft, 5, tau=1.0).double()
    d.attach(student)
    return student, d, x, y, ft


def grads(modules, loss):
    params = [p for m in modules for p in m.parameters()]
    for p in params:
        p.grad = None
    loss.backward()
    return [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]


def plain_terms(student, d, x, y, ft):
    """CE, KD and the hint of SCKD's step, written out (a fresh forward each call)."""
    fs = student.extract(x)
    z_s = fs["logits"]
    ce = F.cross_entropy(z_s, y)
    kd = F.kl_div(F.log_softmax(z_s, 1), F.softmax(ft["logits"], 1), reduction="batchmean")  # tau 1
    r, f_t = d.hint_pair(fs, ft)
    return student, ce, kd, (r - f_t).pow(2).mean()


@pytest.mark.parametrize("broken", ["kd", "hint"])
def test_sckd_drops_a_non_finite_term_without_nan(broken):
    """The teacher's logits hold inf (KD is NaN) or its hint map holds NaN (the FitNet term is):
    that term's gradient's inner product with CE's is NaN, so it is gated off. The loss and every gradient
    are those of the remaining terms, exactly, and finite; a product with 0 would give NaN."""
    student, d, x, y, ft = sckd_case()
    bad = dict(ft)
    if broken == "kd":
        bad["logits"] = ft["logits"].clone().index_fill_(1, torch.tensor([2]), float("inf"))
    else:
        bad["taps"] = [t.clone() for t in ft["taps"]]
        bad["taps"][2][0] = float("nan")  # (one NaN where the ReLU is off would pass no NaN back)
    with NoHostSync():
        loss = d(student.extract(x), bad, y)
    got = grads([student, d], loss)
    # the reference: the broken term left out; the other one gated as SCKD says (computed here)
    _, ce, kd, hint = plain_terms(student, d, x, y, bad)
    assert not torch.isfinite(kd if broken == "kd" else hint)
    shared = list(student.parameters())
    def g(t):
        return torch.autograd.grad(t, shared, retain_graph=True, allow_unused=True)
    other = 100.0 * hint if broken == "kd" else 0.5 * kd
    agrees = sum((a * b).sum() for a, b in zip(g(other), g(ce)) if a is not None and b is not None) > 0
    ref = 0.5 * ce + other if agrees else 0.5 * ce
    assert torch.isfinite(loss) and loss.item() == pytest.approx(ref.item(), rel=1e-12)
    want = grads([student, d], ref)
    for a, b in zip(got, want):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)
    # what a product with 0 would have given: NaN gradients
    _, ce, kd, hint = plain_terms(student, d, x, y, bad)
    naive = grads([student, d], 0.5 * ce + 0.0 * (kd if broken == "kd" else hint))
    assert any(not torch.isfinite(v).all() for v in naive)
