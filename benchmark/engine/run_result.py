"""A run's result record (``result.json``): a finished run's reported, last and best epochs, its
weights' digest, revisions, timing, execution and provenance; a failed run's reason."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .checkpoints import state_digest
from .provenance import provenance

if TYPE_CHECKING:
    from .train import TrainingRun


def done_result(run: TrainingRun, train_eval: dict | None, execution: dict) -> dict:
    """The finished run's result: the reported, last and best epochs, provenance."""
    last = run.history[-1]
    best = max(run.history, key=lambda m: (m["test_top1"], m["epoch"]))
    reported = last if run.recipe["report_epoch"] == "last" else best
    return {
        "id": run.run_id, "status": "done", "config": run.cfg,
        "metrics": {
            "top1": reported["test_top1"], "top5": reported["test_top5"],
            "reported_epoch": run.recipe["report_epoch"],
            "last": {"epoch": last["epoch"], "top1": last["test_top1"], "top5": last["test_top5"]},
            "best": {"epoch": best["epoch"], "top1": best["test_top1"], "top5": best["test_top5"]},
            "train_loss": last["train_loss"],
            "train_top1": train_eval["top1"] if train_eval else None,
        },
        "weights_digest": state_digest(run.model.state_dict()),
        "revisions": run.revisions,
        "epochs_per_s": len(run.epoch_times) / sum(run.epoch_times) if run.epoch_times else None,
        "resumed_from_epoch": run.resumed_from,
        **run.pretraining.summary(),
        "checkpoint_notes": run.notes,
        "execution": execution,
        "provenance": provenance(run.device),
    }


def failed_result(cfg, run_id, reason, options) -> dict:
    return {"id": run_id, "status": "failed", "reason": reason, "config": cfg, "execution": options.record(),
            "provenance": provenance(options.device)}
