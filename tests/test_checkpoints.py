"""Checkpoints (benchmark/engine/checkpoints.py): digests of bit-identical weights, the newest readable
checkpoint of a run with the one before as a fall-back."""

import torch

from benchmark.engine.checkpoints import load_checkpoint, save_checkpoint, state_digest, tensor_bytes
from benchmark.store.layout import CHECKPOINT, Store


def test_the_digest_sees_names_dtypes_and_every_bit():
    a = {"w": torch.tensor([1.0, 2.0]), "b": torch.zeros(0)}
    assert state_digest(a) == state_digest({"b": torch.zeros(0), "w": torch.tensor([1.0, 2.0])})  # order-free
    assert state_digest(a) != state_digest({**a, "w": torch.tensor([1.0, 2.0000002])})
    assert state_digest(a) != state_digest({**a, "w": torch.tensor([1.0, 2.0], dtype=torch.float64)})
    assert state_digest(a) != state_digest({"v": a["w"], "b": a["b"]})
    assert state_digest({"w": torch.tensor([-0.0])}) != state_digest({"w": torch.tensor([0.0])})  # bits, not values


def test_the_newest_readable_checkpoint_and_the_previous_as_fall_back(tmp_path):
    store = Store(tmp_path)
    rid = "0123456789abcdef"
    store.ensure_config(rid, {"model": "x"})
    assert load_checkpoint(store, rid) == (None, [])
    save_checkpoint(store, rid, {"run_id": rid, "epoch": 1})
    save_checkpoint(store, rid, {"run_id": rid, "epoch": 2})
    assert load_checkpoint(store, rid) == ({"run_id": rid, "epoch": 2}, [])
    path = store.run_file(rid, CHECKPOINT)
    path.write_bytes(path.read_bytes()[:40])  # cut by a kill
    state, notes = load_checkpoint(store, rid)
    assert state == {"run_id": rid, "epoch": 1} and len(notes) == 1 and notes[0].startswith("checkpoint.pt unreadable")
    path.write_bytes(tensor_bytes({"run_id": "another", "epoch": 9}))  # another run's file: not taken
    state, notes = load_checkpoint(store, rid)
    assert state["epoch"] == 1 and "not a checkpoint of this run" in notes[0]
