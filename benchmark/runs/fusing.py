"""Fusing: the ready runs a worker trains in one loop with a given one (the same fuse key: data,
recipe, seed and teacher; engine/train.py's ``fuse_key``), up to ``fuse_max``."""

from __future__ import annotations

from ..store.layout import Store
from .events import events
from .options import WorkerOptions
from .queue import JobState


def fusable(states: dict[str, JobState], ready: list[str], first: str, opts: WorkerOptions,
            store: Store | None = None) -> list[str]:
    """`first` and the ready runs that can be trained with it in one loop (up to fuse_max). Under
    --horizontal on, a run claimed before comes back with the members of its last group that are
    still ready: a batched group's membership is fixed for its lifetime, so a resume reforms it."""
    from ..engine.train import fuse_key

    if not opts.fuse:
        return [first]
    key = fuse_key(states[first].config)
    group = [first] + [r for r in ready if r != first and fuse_key(states[r].config) == key]
    claims = [e for e in events(store, first) if e.get("kind") == "claim"] if store is not None else []
    if opts.accel.horizontal == "on" and claims and isinstance(claims[-1].get("group"), list):
        group = [r for r in group if r in claims[-1]["group"] or r == first]
    return group[:opts.fuse_max]
