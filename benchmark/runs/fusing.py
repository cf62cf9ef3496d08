"""Fusing: the ready runs a worker trains in one loop with a given one, up to ``fuse_max``: those of
the same fuse key (data, recipe, seed and teacher; engine/train.py's ``fuse_key``: one data stream,
one teacher forward), and under ``--horizontal on`` also the students of its architecture with
other seeds or teachers (the same ``lane_key``: they fuse into its lane, each row its own batches
and teacher outputs)."""

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
    from ..engine.train import fuse_key, lane_key

    if not opts.fuse:
        return [first]
    cfg = states[first].config
    key = fuse_key(cfg)
    horizontal = opts.accel.horizontal == "on"

    def joins(other: dict) -> bool:
        if fuse_key(other) == key:
            return True
        return horizontal and other["model"] == cfg["model"] and lane_key(other) == lane_key(cfg)

    group = [first] + [r for r in ready if r != first and joins(states[r].config)]
    claims = [e for e in events(store, first) if e.get("kind") == "claim"] if store is not None else []
    if horizontal and claims and isinstance(claims[-1].get("group"), list):
        group = [r for r in group if r in claims[-1]["group"] or r == first]
    return group[:opts.fuse_max]
