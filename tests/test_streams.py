"""Per-sample random streams (benchmark/engine/data/streams.py)."""


from benchmark.engine.data.streams import order_seed, sample_seed
from benchmark.engine.pipeline import derive_seed


def test_streams_are_keyed_by_seed_epoch_and_index_and_order_is_the_tensor_pipelines():
    assert order_seed(3, 5) == derive_seed("train-batches", 3, 5)
    assert len({sample_seed(s, e, i) for s in (0, 1) for e in (0, 1) for i in (0, 1)}) == 8
