"""A finished run's penultimate features (benchmark/results/penultimate.py): computed once from its
saved model by a hook on the final linear layer, per-class centroids of every class and the kept
features of the named classes in the derived area, read back after; a file lacking a class is
computed again with both sets; a torn file is computed again; a run without a model is Failed."""

import pytest
import torch

from benchmark.engine import config as C
from benchmark.engine.models import build_model
from benchmark.errors import Failed
from benchmark.results.penultimate import features_of, path_of, penultimate
from benchmark.results.train_logits import train_logits
from benchmark.store.layout import MODEL, Store
from tests.helpers import tiny

PER = {"train": 2, "val": 1}


def _finished(tmp_path):
    store = Store(tmp_path)
    cfg = C.resolve(tiny())
    rid = C.run_id(cfg)
    store.ensure_config(rid, cfg)
    return store, cfg, rid


def test_features_through_the_final_layer_give_the_runs_logits_and_are_kept(tmp_path):
    store, cfg, rid = _finished(tmp_path)
    with pytest.raises(Failed, match=f"run {rid}: no finished model"):
        penultimate(store, rid, [1], PER)
    torch.manual_seed(0)
    torch.save(build_model("resnet8", 10).state_dict(), store.run_file(rid, MODEL))
    store.write_result(rid, {"id": rid, "status": "done", "config": cfg, "metrics": {}})
    data = penultimate(store, rid, [1, 3], PER)
    logits, labels = train_logits(store, rid)
    w, b = data["weight"], data["bias"]
    assert w.shape[0] == 10 and b.shape == (10,)
    # the kept features: the first 2 training samples of classes 1 and 3, in the split's order
    first = torch.cat([torch.nonzero(labels == c).flatten()[:2] for c in (1, 3)])
    assert data["train"]["labels"].tolist() == [1, 1, 3, 3]
    through = data["train"]["features"] @ w.T + b  # the final layer on the hooked features: the logits
    assert torch.allclose(through, logits[first], atol=0.05)  # float16 features, float16 logits
    # a centroid through the (affine) final layer is the class's mean logit vector
    counts = data["train"]["counts"]
    assert counts.tolist() == [24] * 10
    mean_logits = torch.stack([logits[labels == c].mean(0) for c in range(10)])
    assert torch.allclose(data["train"]["centroids"] @ w.T + b, mean_logits, atol=0.05)
    assert data["val"]["labels"].tolist() == [1, 3] and features_of(data, "val", 3).shape[0] == 1
    saved = torch.load(path_of(store, rid), weights_only=True)
    assert saved["train"]["features"].dtype == torch.float16 and saved["train"]["centroids"].dtype == torch.float32
    assert saved["classes"] == [1, 3] and str(path_of(store, rid)).startswith(str(tmp_path / "derived" / rid))

    store.run_file(rid, MODEL).unlink()  # kept classes are read from the file: no model needed
    again = penultimate(store, rid, [3], PER)
    assert torch.equal(again["train"]["features"], data["train"]["features"])
    with pytest.raises(Failed, match="no finished model"):  # a class not kept: computed again
        penultimate(store, rid, [5], PER)


def test_a_missing_class_is_computed_with_the_kept_ones_and_a_torn_file_again(tmp_path):
    store, cfg, rid = _finished(tmp_path)
    torch.manual_seed(0)
    torch.save(build_model("resnet8", 10).state_dict(), store.run_file(rid, MODEL))
    store.write_result(rid, {"id": rid, "status": "done", "config": cfg, "metrics": {}})
    first = penultimate(store, rid, [1], PER)
    both = penultimate(store, rid, [5], PER)
    assert both["classes"] == [1, 5] and both["train"]["labels"].tolist() == [1, 1, 5, 5]
    assert torch.equal(features_of(both, "train", 1), features_of(first, "train", 1))
    path = path_of(store, rid)
    path.write_bytes(path.read_bytes()[:100])  # torn
    torn = penultimate(store, rid, [1], PER)
    assert torn["classes"] == [1] and torch.equal(features_of(torn, "train", 1), features_of(first, "train", 1))


def test_a_validation_only_file_is_computed_again_with_the_training_split_when_asked(tmp_path):
    """App. G.2's reference needs only validation centroids; a later analysis of the same network
    that needs the training split too computes both (and keeps the classes already kept)."""
    store, cfg, rid = _finished(tmp_path)
    torch.manual_seed(0)
    torch.save(build_model("resnet8", 10).state_dict(), store.run_file(rid, MODEL))
    store.write_result(rid, {"id": rid, "status": "done", "config": cfg, "metrics": {}})
    val = penultimate(store, rid, [2], PER, splits=("val",))
    assert val["splits"] == ["val"] and "train" not in val and val["val"]["counts"].sum() > 0
    both = penultimate(store, rid, (), PER)
    assert both["splits"] == ["train", "val"] and both["classes"] == [2]
    assert torch.equal(both["val"]["centroids"], val["val"]["centroids"])
    assert penultimate(store, rid, [2], PER, splits=("val",))["splits"] == ["train", "val"]  # read, not shrunk
