"""The pre-flight's checks of teacher files (benchmark/runs/preflight.py)."""

import hashlib

from benchmark.engine.models import build_model
from tests.helpers import repdistiller_last_pth


def test_preflight_reads_a_repdistiller_last_pth_teacher_as_the_trainer_does(tmp_path):
    """RepDistiller's ``*_last.pth`` pickles the run's argparse Namespace beside the weights: the
    pre-flight loads it as the trainer does (models.weights.load_file), so a good file passes and
    one of the wrong class count is still refused with what does not fit."""
    import argparse

    from benchmark.runs.preflight import check_teacher_checkpoint
    opt = argparse.Namespace(model="resnet8", learning_rate=0.05, trial="0")
    for classes, fits in ((10, True), (100, False)):
        path = repdistiller_last_pth(tmp_path / f"resnet8-{classes}_last.pth", build_model("resnet8", classes).state_dict(),
                                     opt)
        teacher = {"checkpoint": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "model": "resnet8"}
        found = check_teacher_checkpoint(teacher, "cifar10")
        if fits:
            assert found is None, found.message()
        else:
            assert found is not None and "does not fit resnet8 with 10 classes" in found.message()
