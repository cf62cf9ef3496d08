"""Horizontal fusion (benchmark/horizontal.py): N students of one architecture trained as one batched
model give, within rounding, the runs trained apart; what cannot be batched trains alone, saying why."""

import shutil

import pytest
import torch

from benchmark.engine import config as C
from benchmark.engine import horizontal, methods
from benchmark.engine.accel import Accel
from benchmark.engine.models import build_model
from benchmark.engine.teachers import load_teacher
from benchmark.engine.train import ExecOptions, TrainingRun, build_pipeline, evaluate, step_lane, train_runs
from benchmark.store.layout import MODEL, Store
from tests.helpers import stop_after_epoch, tiny, trained_teacher

SMALL = {"source": "synthetic", "synthetic": {"per_class": 8, "test_per_class": 4, "image_size": 8}}  # 3 steps an epoch
# KD, ATS and a tau grid of KD, with CE and MSE beside them: each student its own loss options
LOSSES = ({"name": "kd", "tau": 1.0}, {"name": "kd", "tau": 4.0, "ce_weight": 0.5}, {"name": "kd", "tau": 8.0},
          {"name": "ats"}, {"name": "ce"}, {"name": "mse"})
FAKE_TEACHER = {"run": "0123456789abcdef"}  # the lane tests feed the teacher's logits themselves


def make_runs(tmp_path, name, dtype, losses=LOSSES, seed=0):
    """Fresh TrainingRuns (nothing trained), their networks in ``dtype``."""
    store = Store(tmp_path / name)
    runs = [TrainingRun(C.resolve(tiny(teacher=FAKE_TEACHER, loss=loss, data=SMALL, seed=seed)), store,
                        torch.device("cpu")) for loss in losses]
    for r in runs:
        r.model.to(dtype)  # in place: the optimizer keeps the same parameters
    return runs


def teacher_net(dtype, which=0):
    torch.manual_seed(99 + which)
    return build_model("resnet8", 10).to(dtype).eval()


def flat(run):
    return torch.cat([p.detach().flatten() for p in run.model.parameters()]
                     + [b.double().flatten() for b in run.model.buffers()])


def rel(a, b):
    return ((flat(a) - flat(b)).norm() / flat(b).norm()).item()


def train(runs, dtype, epochs, steps=None, batched=True, seed=0):
    """Train ``runs`` for ``epochs`` on the tiny stand-in, in one lane or each apart."""
    data, teacher = build_pipeline(runs[0].cfg, ExecOptions()), teacher_net(dtype)
    for epoch in range(epochs):
        for r in runs:
            r.begin_epoch(epoch)
        lane = horizontal.Lane(runs) if batched else None
        for i, (x, y) in enumerate(data.train_batches(seed, epoch)):
            if steps is not None and i == steps:
                break
            x = x.to(dtype)
            with torch.no_grad():
                z_t = teacher(x)
            if lane:
                lane.step(x, y, z_t)
            else:
                for r in runs:
                    r.step(x, y, z_t)
        if lane:
            lane.unstack()
    return data


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_one_step_batched_equals_apart(tmp_path, dtype, tolerance):
    fused, apart = make_runs(tmp_path, "fused", dtype), make_runs(tmp_path, "apart", dtype)
    before = [flat(r).clone() for r in apart]
    train(fused, dtype, epochs=1, steps=1)
    train(apart, dtype, epochs=1, steps=1, batched=False)
    for f, a, b in zip(fused, apart, before):
        assert not torch.equal(flat(a), b)  # the step moved the weights (and the BN statistics)
        assert rel(f, a) < tolerance, f.cfg["loss"]
        # each student's own accounting: its loss, its terms, its gradient norm
        assert torch.allclose(f.loss_sum, a.loss_sum, rtol=tolerance * 10)
        assert f.meter.sums.keys() == a.meter.sums.keys()
        assert torch.allclose(f.meter.grad_sum, a.meter.grad_sum, rtol=tolerance * 10)


def test_several_epochs_batched_equal_apart_in_float64(tmp_path):
    dtype = torch.float64
    fused, apart = make_runs(tmp_path, "fused", dtype, LOSSES[:4]), make_runs(tmp_path, "apart", dtype, LOSSES[:4])
    train(fused, dtype, epochs=3)  # 9 steps, across the lr milestone at epoch 2
    data = train(apart, dtype, epochs=3, batched=False)
    test = [(x.to(dtype), y) for x, y in data.test_batches()]
    for f, a in zip(fused, apart):
        assert rel(f, a) < 1e-9
        for pf, pa in zip(f.model.parameters(), a.model.parameters()):  # each its own momentum
            bf, ba = f.optimizer.state[pf]["momentum_buffer"], a.optimizer.state[pa]["momentum_buffer"]
            assert ((bf - ba).norm() / ba.norm()).item() < 1e-9
        top_f, top_a = evaluate(f.model, test)["top1"], evaluate(a.model, test)["top1"]
        assert abs(top_f - top_a) <= 100 / 40 + 1e-9  # one test image of 40


def test_each_student_its_own_batch_when_seeds_differ(tmp_path):
    """Runs of other seeds (or teachers) fuse too: each row sees its own batch (x, y, z_t stacked)."""
    dtype, seeds = torch.float64, (0, 1, 2)
    fused = [make_runs(tmp_path, f"fused{s}", dtype, LOSSES[:1], seed=s)[0] for s in seeds]
    apart = [make_runs(tmp_path, f"apart{s}", dtype, LOSSES[:1], seed=s)[0] for s in seeds]
    assert rel(fused[0], fused[1]) > 0.1  # other seeds: other initial weights
    data, teacher = build_pipeline(fused[0].cfg, ExecOptions()), teacher_net(dtype)
    for r in fused + apart:
        r.begin_epoch(0)
    lane = horizontal.Lane(fused)
    batches = [next(iter(data.train_batches(s, 0))) for s in seeds]
    xs = torch.stack([x.to(dtype) for x, _ in batches])
    ys = torch.stack([y for _, y in batches])
    with torch.no_grad():
        zs = torch.stack([teacher(x) for x in xs])
    lane.step(xs, ys, zs, per_run=True)
    lane.unstack()
    for r, x, y, z in zip(apart, xs, ys, zs):
        r.step(x, y, z)
    for f, a in zip(fused, apart):
        assert rel(f, a) < 1e-12


# ---------------------------------------------------------------- seeds, teachers and feature methods in one lane

TEACHERS = (FAKE_TEACHER, {"run": "fedcba9876543210"})
MIXED = ((0, 0), (1, 0), (0, 1), (2, 1))  # (seed, teacher) per member: four streams, each its own batches


def mixed_runs(tmp_path, name, dtype, losses, members=MIXED):
    """Fresh runs of the given (seed, teacher) each; a feature method is built on its teacher's
    network (a probe forward in float32), then everything is moved to ``dtype``."""
    store, cpu, runs = Store(tmp_path / name), torch.device("cpu"), []
    for loss, (seed, t) in zip(losses, members):
        cfg = C.resolve(tiny(teacher=TEACHERS[t], loss=loss, data=SMALL, seed=seed))
        taps = methods.entry(loss["name"]).taps
        net = dict(teacher=teacher_net(torch.float32, t), data=build_pipeline(cfg, ExecOptions())) if taps else {}
        runs.append(TrainingRun(cfg, store, cpu, **net))
        runs[-1].model.to(dtype)
        if runs[-1].method.adapters is not None:
            runs[-1].method.adapters.to(dtype)  # in place: its optimizer keeps the same parameters
    return runs


def train_streams(runs, dtype, epochs, steps=None, batched=True):
    """Train ``runs`` each on its own stream ((seed, teacher): its batches, its teacher's outputs),
    in one lane (train.step_lane, as train_runs does) or each apart."""
    data = build_pipeline(runs[0].cfg, ExecOptions())
    keys = sorted({(r.seed, r.cfg["teacher"]["run"]) for r in runs})
    nets = {k: teacher_net(dtype, [t["run"] for t in TEACHERS].index(k[1])) for k in keys}
    features = any(r.method.taps for r in runs)
    for epoch in range(epochs):
        for r in runs:
            r.begin_epoch(epoch)
        lane = horizontal.Lane(runs) if batched else None
        for i, batches in enumerate(zip(*(data.train_batches(k[0], epoch, with_index=True) for k in keys))):
            if steps is not None and i == steps:
                break
            of = {}
            for k, (x, y, index) in zip(keys, batches):
                x = x.to(dtype)
                with torch.no_grad():
                    ft = nets[k].extract(x) if features else None
                    of[k] = (x, y, index, ft["logits"] if features else nets[k](x), ft)
            inputs = [of[(r.seed, r.cfg["teacher"]["run"])] for r in runs]
            if lane:
                step_lane(lane, inputs, i / 3)
            else:
                for r, (x, y, index, z_t, ft) in zip(runs, inputs):
                    r.step(x, y, z_t, ft, index, progress=i / 3)
        if lane:
            lane.unstack()
    return data


CRD = {"name": "crd", "nce_k": 16}
MIXED_LOSSES = ({"name": "kd", "tau": 4.0}, {"name": "ats"}, CRD, {"name": "kd", "tau": 8.0})


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_one_step_of_other_seeds_teachers_and_crd_batched_equals_apart(tmp_path, dtype, tolerance):
    fused, apart = (mixed_runs(tmp_path, n, dtype, MIXED_LOSSES) for n in ("fused", "apart"))
    assert rel(fused[0], fused[1]) > 0.1  # another seed: other initial weights
    before = [flat(r).clone() for r in apart]
    train_streams(fused, dtype, epochs=1, steps=1)
    train_streams(apart, dtype, epochs=1, steps=1, batched=False)
    for f, a, b in zip(fused, apart, before):
        assert not torch.equal(flat(a), b)
        assert rel(f, a) < tolerance, f.cfg["loss"]
        assert torch.allclose(f.meter.grad_sum, a.meter.grad_sum, rtol=tolerance * 10)
    crd_f, crd_a = fused[2].method, apart[2].method
    for name, t in crd_a.state_dict().items():  # CRD's embeddings and memory banks: each run's own, moved alike
        assert ((crd_f.state_dict()[name] - t).double().norm() / t.double().norm()).item() < tolerance, name


def test_several_epochs_of_other_seeds_teachers_and_crd_batched_equal_apart_in_float64(tmp_path):
    dtype = torch.float64
    fused, apart = (mixed_runs(tmp_path, n, dtype, MIXED_LOSSES) for n in ("fused", "apart"))
    train_streams(fused, dtype, epochs=3)  # 9 steps, across the lr milestone at epoch 2
    data = train_streams(apart, dtype, epochs=3, batched=False)
    test = [(x.to(dtype), y) for x, y in data.test_batches()]
    for f, a in zip(fused, apart):
        assert rel(f, a) < 1e-9, f.cfg["loss"]
        for pf, pa in zip(f.optimizer.param_groups[0]["params"], a.optimizer.param_groups[0]["params"]):
            bf, ba = f.optimizer.state[pf]["momentum_buffer"], a.optimizer.state[pa]["momentum_buffer"]
            assert ((bf - ba).norm() / ba.norm()).item() < 1e-9  # adapters' momentum too (CRD's embeddings)
        assert abs(evaluate(f.model, test)["top1"] - evaluate(a.model, test)["top1"]) <= 100 / 40 + 1e-9


FEATURE_METHODS = [n for n in methods.names(taps=True) if n not in horizontal.NOT_BATCHED]


@pytest.mark.parametrize("name", FEATURE_METHODS)
def test_every_batched_feature_method_one_step_equals_apart_in_float64(tmp_path, name):
    """Each feature method beside a KD run of another seed: one step in a lane equals it apart."""
    losses = [{"name": name, **({"nce_k": 16} if name == "crd" else {})}, {"name": "kd"}]
    fused, apart = (mixed_runs(tmp_path, n, torch.float64, losses, MIXED[:2]) for n in ("fused", "apart"))
    train_streams(fused, torch.float64, epochs=1, steps=1)
    train_streams(apart, torch.float64, epochs=1, steps=1, batched=False)
    for f, a in zip(fused, apart):
        assert rel(f, a) < 1e-12, f.cfg["loss"]


def test_a_failing_student_leaves_the_others_as_apart(tmp_path):
    dtype = torch.float64
    fused, apart = make_runs(tmp_path, "fused", dtype, LOSSES[:3]), make_runs(tmp_path, "apart", dtype, LOSSES[:3])
    with torch.no_grad():
        next(fused[1].model.parameters()).fill_(float("nan"))
    train(fused, dtype, epochs=1)
    train(apart, dtype, epochs=1, batched=False)
    assert not torch.isfinite(fused[1].loss_sum)  # end_epoch fails this run (RunFailed)
    for i in (0, 2):
        assert torch.isfinite(flat(fused[i])).all()
        assert rel(fused[i], apart[i]) < 1e-12


def test_what_cannot_be_batched_says_why(tmp_path):
    store = Store(tmp_path / "s")
    dropout = TrainingRun(C.resolve(tiny(dataset="cub", model="alexnet_small", data=SMALL)), store, torch.device("cpu"))
    assert "dropout" in horizontal.why_apart(dropout)
    resnets = make_runs(tmp_path, "r", torch.float32, LOSSES[:2])
    other = TrainingRun(C.resolve(tiny(model="resnet14", data=SMALL)), store, torch.device("cpu"))
    groups, alone = horizontal.lanes([*resnets, other, dropout], "on")
    assert groups == [resnets]
    assert alone == {other.run_id: "no other student of resnet14 in its group",
                     dropout.run_id: horizontal.why_apart(dropout)}
    groups, alone = horizontal.lanes(resnets, "off")
    assert groups == [] and set(alone.values()) == {"off"}


# ---------------------------------------------------------------- through the trainer


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return trained_teacher(tmp_path_factory.mktemp("teacher"))


def group(tid):
    """KD, ATS, a tau pair, CE on resnet8 (one lane) and CE on resnet14 (alone)."""
    losses = [*LOSSES[:2], {"name": "ats"}, {"name": "ce"}]
    rec = {"epochs": 2, "final_train_eval": False}
    cfgs = [C.resolve(tiny(teacher={"run": tid}, loss=loss, data=SMALL, recipe=rec)) for loss in losses]
    cfgs.append(C.resolve(tiny(teacher={"run": tid}, model="resnet14", data=SMALL, recipe=rec)))
    return cfgs


def store_with_teacher(teacher, path):
    tstore, tid = teacher
    store = Store(path)
    shutil.copytree(tstore.run_dir(tid), store.run_dir(tid))
    return store


@pytest.fixture(scope="module")
def both(teacher, tmp_path_factory):
    out = {}
    for mode in horizontal.MODES:
        store = store_with_teacher(teacher, tmp_path_factory.mktemp(mode))
        out[mode] = store, train_runs(group(teacher[1]), store, ExecOptions(accel=Accel(horizontal=mode)))
    return out


def weights(store, rid):
    sd = torch.load(store.run_file(rid, MODEL).open("rb"), weights_only=True)
    return torch.cat([v.double().flatten() for v in sd.values()])


def test_trainer_batched_equals_apart_within_rounding_and_one_test_image(both, teacher):
    (s_on, on), (s_off, off) = both["on"], both["off"]
    cfgs = group(teacher[1])
    lane = [C.run_id(c) for c in cfgs[:4]]
    for rid in on:
        assert on[rid]["status"] == off[rid]["status"] == "done"
        a, b = weights(s_on, rid), weights(s_off, rid)
        # float32 rounding (1e-7 after one step) grows over 6 steps; the float64 tests above are the exact check
        assert ((a - b).norm() / b.norm()).item() < 1e-3
        assert abs(on[rid]["metrics"]["top1"] - off[rid]["metrics"]["top1"]) <= 100 / 40 + 1e-6
        assert on[rid]["execution"]["horizontal"] == "on" and off[rid]["execution"]["horizontal"] == "off"
        assert off[rid]["execution"]["horizontal_group"] == {"mode": "off", "size": 1, "members": [rid]}
    for rid in lane:
        assert on[rid]["execution"]["horizontal_group"] == {"mode": "batched", "size": 4, "members": lane}
    r14 = C.run_id(cfgs[4])
    assert on[r14]["execution"]["horizontal_group"]["why"] == "no other student of resnet14 in its group"
    # a run the lane left alone trains as it does with horizontal fusion off: bit for bit
    assert on[r14]["weights_digest"] == off[r14]["weights_digest"]


def test_sckd_trains_alone_and_crd_does_not(teacher):
    """SCKD differentiates by the student's own parameters; CRD's adapters and banks batch."""
    store, tid = teacher
    cfg = C.resolve(tiny(teacher={"run": tid}, loss={"name": "crd"}, data=SMALL))
    cpu = torch.device("cpu")
    run = TrainingRun(cfg, store, cpu, teacher=load_teacher(cfg, store, cpu), data=build_pipeline(cfg, ExecOptions()))
    assert horizontal.why_apart(run) is None  # CRD trains in a lane: its embeddings and banks stay its own
    sckd = C.resolve(tiny(teacher={"run": tid}, loss={"name": "sckd"}, data=SMALL))
    run = TrainingRun(sckd, store, cpu, teacher=load_teacher(sckd, store, cpu), data=build_pipeline(sckd, ExecOptions()))
    assert "student's own parameters" in horizontal.why_apart(run)


def test_resume_of_a_batched_group_is_exact(both, teacher, tmp_path):
    store, done = both["on"]
    resumed = store_with_teacher(teacher, tmp_path / "resumed")
    cfgs = group(teacher[1])[:4]

    class Kill(Exception):
        pass

    def kill(m):  # once every run has checkpointed its first epoch
        seen.append(m["run"])
        if len(seen) == len(cfgs):
            raise Kill
    seen = []
    with pytest.raises(Kill):
        train_runs(cfgs, resumed, ExecOptions(accel=Accel(horizontal="on"), on_epoch=kill))
    again = train_runs(cfgs, resumed, ExecOptions(accel=Accel(horizontal="on")))
    for rid, res in again.items():
        assert res["resumed_from_epoch"] == 1
        assert (res["metrics"], res["weights_digest"]) == (done[rid]["metrics"], done[rid]["weights_digest"])
        assert res["execution"]["horizontal_group"]["members"] == [C.run_id(c) for c in cfgs]


def test_a_run_is_not_resumed_under_the_other_mode(teacher, tmp_path):
    store = store_with_teacher(teacher, tmp_path / "s")
    cfg = group(teacher[1])[0]
    stop_after_epoch(cfg, store)
    res = train_runs([cfg], store, ExecOptions(accel=Accel(horizontal="on")))[C.run_id(cfg)]
    assert res["status"] == "failed" and "horizontal=on" in res["reason"]


# ---------------------------------------------------------------- workers and the command line


def test_a_worker_reforms_a_batched_group_on_resume(tmp_path):
    from benchmark.runs.events import append_event
    from benchmark.runs.fusing import fusable
    from benchmark.runs.options import WorkerOptions
    from benchmark.runs.queue import runnable, scan

    store = Store(tmp_path)
    cfgs = [C.resolve(tiny(loss=loss, data=SMALL)) for loss in
            ({"name": "ce"}, {"name": "ls", "alpha": 0.1}, {"name": "ls", "alpha": 0.2})]
    ids = [C.run_id(c) for c in cfgs]
    for rid, cfg in zip(ids, cfgs):
        store.ensure_config(rid, cfg)
    append_event(store, ids[0], kind="claim", worker="w", fused=2, group=sorted(ids[:2]))
    states = scan(store)
    ready = runnable(states)
    on, off = (WorkerOptions(store=str(tmp_path), accel=Accel(horizontal=m)) for m in ("on", "off"))
    assert sorted(fusable(states, ready, ids[0], on, store)) == sorted(ids[:2])
    assert sorted(fusable(states, ready, ids[0], off, store)) == sorted(ids)  # vertical fusion: any ready run
    assert sorted(fusable(states, ready, ids[2], on, store)) == sorted(ids)  # never claimed: its whole key


def test_the_flag_reaches_the_workers_and_follows_the_policy():
    import argparse

    from benchmark.engine import accel

    assert Accel().horizontal == Accel(numerics="strict").horizontal == "off"
    assert Accel(numerics="fast").horizontal == "on"
    assert Accel(horizontal="on").label() == "reproducible, horizontal=on"  # a checkpoint refuses the other mode
    parser = argparse.ArgumentParser()
    accel.add_arguments(parser)
    for a in (Accel(horizontal="on"), Accel(numerics="fast", horizontal="off"), Accel(numerics="fast")):
        assert accel.from_args(parser.parse_args(accel.to_cli(a))) == a
    with pytest.raises(ValueError, match="horizontal"):
        Accel(horizontal="maybe")


def test_reproduce_gives_the_same_cells_with_horizontal_on_and_off(tmp_path, monkeypatch, capsys):
    """The done-when of issue 26 on the tests' KL-MSE Table 4 (klmse-table1's layout: a KD tau grid and
    MSE on one student architecture, 6 students in one lane), smoke profile: each reproduced cell
    within one test image. The teacher is trained once (under off) and copied: fusion is about the students."""
    import json

    from benchmark import cli
    from benchmark.engine.data import get_spec
    from tests.helpers import REPO

    monkeypatch.setenv("KD_REPRO_CATALOG", str(REPO / "tests" / "catalog"))
    cells, stores = {}, {m: Store(tmp_path / m) for m in ("off", "on")}
    for mode in ("off", "on"):
        if mode == "on":  # the store's layout record, then the teacher's run folder
            stores["on"].root.mkdir(parents=True, exist_ok=True)
            shutil.copy(stores["off"].root / "store.json", stores["on"].root / "store.json")
            for rid in [p.name for p in stores["off"].root.joinpath("runs").iterdir()]:
                if (stores["off"].config(rid) or {}).get("teacher") is None:
                    shutil.copytree(stores["off"].run_dir(rid), stores["on"].run_dir(rid))
        argv = ["reproduce", "klmse-table4", "--profile", "smoke", "--store", stores[mode].root, "--device", "cpu",
                "--horizontal", mode, "--quiet", "--no-report"]
        assert cli.main([str(a) for a in argv]) == 0, capsys.readouterr()
        capsys.readouterr()
        assert cli.main(["report", "klmse-table4", "--store", str(stores[mode].root), "--format", "json"]) in (0, 1)
        cells[mode] = {(c["row"], c["col"]): c["reproduced"] for c in json.loads(capsys.readouterr().out)["cells"]}
    on_results = [stores["on"].result(p.name) for p in stores["on"].root.joinpath("runs").iterdir()]
    groups = [r["execution"]["horizontal_group"] for r in on_results if r["config"]["teacher"] is not None]
    assert len(groups) == 6 and all(g["mode"] == "batched" and g["size"] == 6 for g in groups)
    cfg = on_results[0]["config"]
    one_image = 100 / (cfg["data"]["synthetic"]["test_per_class"] * get_spec(cfg["dataset"]).num_classes)
    assert cells["on"].keys() == cells["off"].keys() and len(cells["on"]) == 7
    for key, off in cells["off"].items():
        # MSE's cell is an analysis of the test logits (the sharpness gap), not an accuracy: within 1%
        bound = abs(off) * 1e-2 if key[1] == "MSE" else one_image + 1e-9
        assert off is not None and abs(cells["on"][key] - off) <= bound, (key, cells["on"][key], off)


def test_a_worker_fuses_other_seeds_and_teachers_of_its_architecture_only_under_on(tmp_path):
    from benchmark.runs.fusing import fusable
    from benchmark.runs.options import WorkerOptions
    from benchmark.runs.queue import runnable, scan

    store = Store(tmp_path)
    cfgs = [C.resolve(tiny(data=SMALL, seed=0)), C.resolve(tiny(data=SMALL, seed=0, model="resnet14")),
            C.resolve(tiny(data=SMALL, seed=1)), C.resolve(tiny(data=SMALL, seed=1, model="resnet14")),
            C.resolve(tiny(data=SMALL, seed=0, recipe={"epochs": 3}))]
    ids = [C.run_id(c) for c in cfgs]
    for rid, cfg in zip(ids, cfgs):
        store.ensure_config(rid, cfg)
    states = scan(store)
    ready = runnable(states)
    on, off = (WorkerOptions(store=str(tmp_path), accel=Accel(horizontal=m)) for m in ("on", "off"))
    # its stream (seed 0: resnet8 and resnet14), and its architecture of another seed; never another recipe
    assert sorted(fusable(states, ready, ids[0], on, store)) == sorted(ids[:3])
    assert sorted(fusable(states, ready, ids[0], off, store)) == sorted(ids[:2])
    with pytest.raises(ValueError, match="seed or teacher"):
        train_runs(cfgs[::2][:2], store, ExecOptions())  # seeds 0 and 1 under off: apart
