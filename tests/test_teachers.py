"""The frozen teacher (benchmark/engine/teachers.py): from a checkpoint file whose sha256 matches, in
eval mode without gradients; a missing file, a wrong digest, an unfinished run are RunFailed."""

import hashlib

import pytest
import torch

from benchmark.engine.models import build_model
from benchmark.engine.teachers import load_teacher
from benchmark.engine.train_errors import RunFailed
from benchmark.store.layout import Store


def _cfg(teacher):
    return {"dataset": "cifar10", "teacher": teacher}


def test_a_checkpoint_teacher_is_loaded_frozen_and_checked(tmp_path):
    store = Store(tmp_path / "store")
    assert load_teacher(_cfg(None), store, "cpu") is None
    torch.manual_seed(0)
    weights = build_model("resnet8", 10).state_dict()
    path = tmp_path / "t.pt"
    torch.save(weights, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    model = load_teacher(_cfg({"checkpoint": str(path), "sha256": digest, "model": "resnet8"}), store, "cpu")
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())
    with pytest.raises(RunFailed, match="does not match its sha256"):
        load_teacher(_cfg({"checkpoint": str(path), "sha256": "0" * 64, "model": "resnet8"}), store, "cpu")
    with pytest.raises(RunFailed, match="does not exist"):
        load_teacher(_cfg({"checkpoint": str(tmp_path / "no.pt"), "sha256": digest, "model": "resnet8"}), store, "cpu")
    with pytest.raises(RunFailed, match="teacher run 00000000000000aa is not finished"):
        load_teacher(_cfg({"run": "00000000000000aa"}), store, "cpu")
