"""bench's horizontal fusion cases: N students of one architecture (a KD tau grid) on one data stream
and one teacher forward, trained each with its own kernels (``separate``, what a fused group does
with ``--horizontal off``) and as one batched model (``batched``, horizontal.py), measured in the
same process on the same batches. ``ratio`` = separate seconds / batched seconds (above 1: batched
pays)."""

from __future__ import annotations

import torch

from ..engine import horizontal
from ..engine.train import Student


def horizontal_cases(timed, sizes, cfg: dict, store, dev: torch.device, accel, pipe, step, stream, warmup: int,
                     steps: int, log) -> list[dict]:
    """For each N in ``sizes``: seconds for ``steps`` steps of N students apart, then batched, each
    timed by ``timed`` (bench's own timer, passed in: bench imports this module). ``step`` is the
    trainer's per-batch step (train.GroupStep) on bench's ``stream`` (its data and teacher); the lanes come from
    ``horizontal.form``, as in the trainer, with the mode off (apart) and on (batched)."""
    cases = []
    epoch = [100]

    def batches():
        epoch[0] += 1
        return pipe.train_batches(0, epoch[0])

    for n in sizes:
        runs = [Student({**cfg, "seed": 1000 * n + i, "loss": {**cfg["loss"], "tau": 1.0 + i}}, store, dev, accel)
                for i in range(n)]
        for r in runs:
            r.begin_epoch(0)
        out = {"name": f"horizontal{n}", "students": n, "steps": steps}
        for label, mode in (("separate", "off"), ("batched", "on")):
            lanes = horizontal.form(runs, mode)

            def fn(x, y, runs=runs, lanes=lanes):
                step([(stream, (x, y))], runs, lanes)

            log(f"timing {n} student{'s' if n > 1 else ''} {label}: {warmup} + {steps} steps")
            out[f"{label}_seconds"] = timed(fn, batches, warmup, steps, dev)
            out[f"{label}_per_student_images_per_s"] = steps * pipe.batch_size * n / out[f"{label}_seconds"]
        out["ratio"] = out["separate_seconds"] / out["batched_seconds"]
        cases.append(out)
    return cases
