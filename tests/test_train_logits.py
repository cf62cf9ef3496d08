"""A finished run's training-set logits (benchmark/results/train_logits.py): computed once from its
saved model, kept as float16 with the labels in the store's derived area, read back after; a run
without a finished model is Failed."""

import pytest
import torch

from benchmark.engine import config as C
from benchmark.engine.data.synthetic import synthetic_arrays
from benchmark.engine.models import build_model
from benchmark.errors import Failed
from benchmark.results.train_logits import path_of, train_logits
from benchmark.store.layout import MODEL, Store
from tests.helpers import tiny


def test_computed_once_from_the_model_and_read_back(tmp_path):
    store = Store(tmp_path)
    cfg = C.resolve(tiny())
    rid = C.run_id(cfg)
    store.ensure_config(rid, cfg)
    with pytest.raises(Failed, match=f"run {rid}: no finished model"):
        train_logits(store, rid)
    torch.manual_seed(0)
    torch.save(build_model("resnet8", 10).state_dict(), store.run_file(rid, MODEL))
    store.write_result(rid, {"id": rid, "status": "done", "config": cfg, "metrics": {}})
    logits, labels = train_logits(store, rid)
    _, want_labels = synthetic_arrays("cifar10", "train", per_class=24)
    assert logits.shape == (240, 10) and logits.dtype == torch.float32
    assert torch.equal(labels, want_labels)  # the training set, un-shuffled
    saved = torch.load(path_of(store, rid), weights_only=True)
    assert saved["logits"].dtype == torch.float16 and saved["run"] == rid
    assert torch.equal(logits, saved["logits"].float())  # what the first call returns is what is kept
    store.run_file(rid, MODEL).unlink()  # the second call reads the file: the model is not needed
    again, _ = train_logits(store, rid)
    assert torch.equal(again, logits)
