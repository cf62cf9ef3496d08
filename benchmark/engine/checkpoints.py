"""A run's checkpoint on disk: written atomically and fenced after every epoch, read back with a
fall-back to the one before; and the byte form of tensors the trainer stores."""

from __future__ import annotations

import hashlib
import io

import torch

from ..store.layout import CHECKPOINT, PREVIOUS_CHECKPOINT, Store


def tensor_bytes(obj) -> bytes:
    """``torch.save`` of ``obj`` into memory (the store writes the bytes atomically)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def state_digest(state: dict) -> str:
    """sha256 over the tensors' names and bytes: equal digests mean bit-identical weights."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_checkpoint(store: Store, run_id: str, state: dict) -> None:
    """Atomically replace the checkpoint, keeping the one before as a fall-back (fenced: both
    renames happen under the run's lock, only while this writer holds the lease)."""
    store.write_run_file(run_id, CHECKPOINT, tensor_bytes(state), keep_previous=PREVIOUS_CHECKPOINT)


def load_checkpoint(store: Store, run_id: str) -> tuple[dict | None, list[str]]:
    """The newest readable checkpoint of this run and notes on any that were unreadable."""
    notes = []
    for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
        path = store.run_file(run_id, name)
        if not path.exists():
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or state.get("run_id") != run_id:
                raise ValueError("not a checkpoint of this run")
            return state, notes
        except Exception as err:  # truncated zip, bad pickle, wrong run: fall back, don't crash
            notes.append(f"{name} unreadable ({type(err).__name__}: {err}); falling back")
    return None, notes
