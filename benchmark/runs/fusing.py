"""Fusing: the ready runs a worker trains in one loop with a given one (the same fuse key: data,
recipe, seed and teacher; engine/train.py's ``fuse_key``), up to ``fuse_max``."""

from __future__ import annotations

from .options import WorkerOptions
from .queue import JobState


def fusable(states: dict[str, JobState], ready: list[str], first: str, opts: WorkerOptions) -> list[str]:
    """`first` and the ready runs that can be trained with it in one loop (up to fuse_max)."""
    from ..engine.train import fuse_key

    if not opts.fuse:
        return [first]
    key = fuse_key(states[first].config)
    group = [first] + [r for r in ready if r != first and fuse_key(states[r].config) == key]
    return group[:opts.fuse_max]
