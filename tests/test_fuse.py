"""Fused training (K runs, one data stream, one teacher forward) is the same computation as apart."""

import pytest

from benchmark.engine import config as C
from benchmark.engine.execution import ExecOptions
from benchmark.engine.train import fuse_key, train_run, train_runs
from benchmark.runs.events import events
from benchmark.runs.options import WorkerOptions
from benchmark.runs.worker import run_worker
from benchmark.store.layout import Store
from tests.helpers import tiny, trained_teacher


def same(a, b):
    return (a["metrics"], a["weights_digest"]) == (b["metrics"], b["weights_digest"])


def lines(store, rid):
    """metrics.jsonl without the wall time: every loss term, lr, grad norm, bad-step fraction."""
    return [{k: v for k, v in m.items() if k != "time_s"} for m in store.metrics(rid)]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return trained_teacher(tmp_path_factory.mktemp("teacher"))


def students(tid):
    """Three students that fuse. 8 images per class (3 steps an epoch, 3 epochs across the lr
    milestone) is enough to compare every line and digest, at a third of tiny()'s 24."""
    small = {"source": "synthetic", "synthetic": {"per_class": 8, "test_per_class": 4, "image_size": 8}}
    return [C.resolve(tiny(teacher={"run": tid}, loss=loss, data=small)) for loss in
            ({"name": "kd", "tau": 2.0}, {"name": "kd", "tau": 4.0, "ce_weight": 0.5}, {"name": "mse"})]


def copy_teacher(src, dst, tid):
    import shutil
    shutil.copytree(src.run_dir(tid), dst.run_dir(tid))


def test_fused_equals_apart_with_a_shared_teacher(teacher, tmp_path):
    tstore, tid = teacher
    cfgs = students(tid)
    assert len({fuse_key(c) for c in cfgs}) == 1
    fused, apart = Store(tmp_path / "fused"), Store(tmp_path / "apart")
    for s in (fused, apart):
        copy_teacher(tstore, s, tid)
    together = train_runs(cfgs, fused, ExecOptions())
    for cfg in cfgs:
        alone = train_run(cfg, apart, ExecOptions())
        assert same(together[alone["id"]], alone)
        assert together[alone["id"]]["execution"]["fused_with"] == 3
        assert lines(fused, alone["id"]) == lines(apart, alone["id"])
        assert {"loss_ce", "loss_kd" if cfg["loss"]["name"] == "kd" else "loss_mse", "grad_norm"} <= set(lines(apart, alone["id"])[0])


def test_fused_equals_apart_with_dropout(tmp_path):
    # alexnet_small has dropout: each run must draw from its own random stream. One image per
    # class (200, 7 steps an epoch) gives every run 14 dropout draws; 3 per class tripled the time.
    base = dict(dataset="cub", model="alexnet_small", recipe={"epochs": 2, "batch_size": 32})
    cfgs = [C.resolve(tiny(**base, loss=loss, data={"source": "synthetic", "synthetic": {"per_class": 1,
                                                                                         "test_per_class": 1}}))
            for loss in ({"name": "ce"}, {"name": "ls", "alpha": 0.1})]
    together = train_runs(cfgs, Store(tmp_path / "fused"), ExecOptions())
    for cfg in cfgs:
        alone = train_run(cfg, Store(tmp_path / "apart"), ExecOptions())
        assert same(together[alone["id"]], alone)
        assert lines(Store(tmp_path / "fused"), alone["id"]) == lines(Store(tmp_path / "apart"), alone["id"])


def test_runs_with_other_seeds_are_not_fused(teacher):
    _, tid = teacher
    a, b = students(tid)[0], C.resolve(tiny(teacher={"run": tid}, loss={"name": "kd"}, seed=1))
    assert fuse_key(a) != fuse_key(b)
    with pytest.raises(ValueError, match="apart"):
        train_runs([a, b], Store("/nonexistent"), ExecOptions())


def test_worker_fuses_runnable_runs_and_no_fuse_turns_it_off(teacher, tmp_path):
    tstore, tid = teacher
    for fuse, store_dir in ((True, "on"), (False, "off")):
        store = Store(tmp_path / store_dir)
        copy_teacher(tstore, store, tid)
        ids = []
        for cfg in students(tid):
            ids.append(C.run_id(cfg))
            store.ensure_config(ids[-1], cfg)
        assert run_worker(WorkerOptions(store=str(store.root), fuse=fuse, poll_seconds=0.1)) == {"done": 3}
        sizes = [events(store, rid)[0]["fused"] for rid in ids]
        assert sizes == ([3, 3, 3] if fuse else [1, 1, 1])
