"""A run's result record (benchmark/engine/run_result.py): the reported, last and best epochs by hand."""

from types import SimpleNamespace

import torch

from benchmark.engine.checkpoints import state_digest
from benchmark.engine.execution import ExecOptions
from benchmark.engine.pretraining import PretrainProgress
from benchmark.engine.run_result import done_result, failed_result


def _run(report_epoch):
    history = [{"epoch": 1, "test_top1": 50.0, "test_top5": 80.0, "train_loss": 2.0},
               {"epoch": 2, "test_top1": 60.0, "test_top5": 85.0, "train_loss": 1.5},
               {"epoch": 3, "test_top1": 60.0, "test_top5": 86.0, "train_loss": 1.2},  # ties the best: the later wins
               {"epoch": 4, "test_top1": 55.0, "test_top5": 84.0, "train_loss": 1.0}]
    model = torch.nn.Linear(2, 2)
    return SimpleNamespace(run_id="r", cfg={"model": "m"}, history=history, recipe={"report_epoch": report_epoch},
                           model=model, revisions={"models": 1}, epoch_times=[1.0, 3.0], resumed_from=None,
                           pretraining=PretrainProgress([]), notes=[], device="cpu")


def test_reported_last_and_best_epochs():
    last = done_result(_run("last"), {"top1": 70.0}, {"device": "cpu"})
    m = last["metrics"]
    assert (m["top1"], m["top5"], m["reported_epoch"]) == (55.0, 84.0, "last")
    assert m["last"] == {"epoch": 4, "top1": 55.0, "top5": 84.0} and m["best"] == {"epoch": 3, "top1": 60.0, "top5": 86.0}
    assert (m["train_loss"], m["train_top1"], last["epochs_per_s"]) == (1.0, 70.0, 0.5)
    run = _run("best")
    best = done_result(run, None, {})
    assert (best["metrics"]["top1"], best["metrics"]["train_top1"]) == (60.0, None)
    assert best["weights_digest"] == state_digest(run.model.state_dict()) and "init_stages" not in best


def test_a_failed_run_records_its_reason_and_how_it_ran():
    res = failed_result({"model": "m"}, "r", "RunFailed: nan", ExecOptions())
    assert (res["id"], res["status"], res["reason"], res["config"]) == ("r", "failed", "RunFailed: nan", {"model": "m"})
    assert res["execution"] == ExecOptions().record() and res["provenance"]["device"] == "cpu"
