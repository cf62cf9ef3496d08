"""The results as frames (benchmark/results/frames.py), on a store written by hand: a run's row with its
dotted config columns, the epochs frame, and how many runs a cell's number is the mean of. Frames of a
trained store are checked in test_results.py."""

import json
from types import SimpleNamespace

from benchmark.results import frames as R
from benchmark.store.layout import METRICS, Store

RID = "00000000000000ab"
CFG = {"dataset": "cifar100", "model": "resnet8", "seed": 1, "teacher": {"run": "00000000000000cd"},
       "loss": {"name": "kd", "tau": 4.0}, "recipe": {"epochs": 2, "optimizer": {"lr": 0.05}}}


def _store(tmp_path):
    store = Store(tmp_path)
    store.ensure_config(RID, CFG)
    store.write_result(RID, {"id": RID, "status": "done", "config": CFG, "wall_time_s": 12.5,
                             "metrics": {"top1": 61.0, "top5": 88.0, "reported_epoch": "last",
                                         "last": {"epoch": 2, "top1": 61.0}, "best": {"epoch": 1, "top1": 62.0}},
                             "provenance": {"device": "cpu", "code_revision": "abc"}})
    lines = [{"epoch": 1, "lr": 0.05, "train_loss": 2.0, "loss_kd": 2.0}, {"epoch": 2, "lr": 0.005, "train_loss": 1.5,
                                                                          "loss_kd": 1.5, "test_top1": 61.0}]
    store.run_file(RID, METRICS).write_text("".join(json.dumps(m) + "\n" for m in lines))
    return store


def test_a_runs_row_by_hand(tmp_path):
    row = R.run_row(_store(tmp_path), RID, {"tables": ["t1", "t2"], "profile": "smoke", "role": "student"})
    want = {"id": RID, "tables": "t1,t2", "profile": "smoke", "role": "student", "status": "done",
            "dataset": "cifar100", "model": "resnet8", "teacher": "00000000000000cd", "loss": "kd", "tau": 4.0,
            "seed": 1, "epochs": 2, "top1": 61.0, "top5": 88.0, "last_top1": 61.0, "best_top1": 62.0, "best_epoch": 1,
            "reported_epoch": "last", "epochs_done": 2, "device": "cpu", "device_name": None, "wall_time_s": 12.5,
            "code_revision": "abc", "fused_with": None, "reason": None,
            "loss.tau": 4.0, "recipe.epochs": 2, "recipe.optimizer.lr": 0.05}
    assert row == want


def test_the_epochs_frame_has_a_row_per_logged_epoch(tmp_path):
    ep = R.epochs(_store(tmp_path))
    assert list(ep.columns) == ["run", "stage", "epoch", "loss_kd", "lr", "test_top1", "train_loss"]
    assert ep["epoch"].tolist() == [1, 2] and ep["loss_kd"].tolist() == [2.0, 1.5]
    assert ep["test_top1"].isna().tolist() == [True, False]  # not logged in epoch 1
    assert list(R.epochs(Store(tmp_path / "empty")).columns) == ["run", "stage", "epoch"]


def test_n_is_the_seeds_behind_the_number():
    def cell(**kw):
        return SimpleNamespace(**{"n": None, "reproduced": 70.0, "runs": ["a", "b", "c", "d"], "rule": "value",
                                  "grid": [], **kw})
    assert R._n(cell()) == 4
    assert R._n(cell(rule="best", grid=[{}, {}])) == 2  # a grid of 2 points, 2 seeds each
    assert R._n(cell(rule="ensemble")) == 1
    assert R._n(cell(n=3)) == 3 and R._n(cell(reproduced=None)) is None
