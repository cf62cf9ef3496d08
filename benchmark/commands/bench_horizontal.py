"""bench's horizontal fusion cases: N students of one architecture (a KD tau grid) on one data stream
and one teacher forward, trained each with its own kernels (``separate``, what a fused group does
with ``--horizontal off``) and as one batched model (``batched``, horizontal.py), measured in the
same process on the same batches. ``ratio`` = separate seconds / batched seconds (above 1: batched
pays)."""

from __future__ import annotations

import torch

from ..engine import horizontal
from ..engine.accel import autocast, prepare_input
from ..engine.train import Student


def horizontal_cases(timed, sizes, cfg: dict, store, dev: torch.device, accel, pipe, teacher_forward, warmup: int,
                     steps: int, log) -> list[dict]:
    """For each N in ``sizes``: seconds for ``steps`` steps of N students apart, then batched, each
    timed by ``timed`` (bench's own timer, passed in: bench imports this module)."""
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
        lane = horizontal.Lane(runs)

        def teacher(x):
            x = prepare_input(x, accel)
            with torch.no_grad(), autocast(dev, accel):
                return x, teacher_forward(x)

        def separate(x, y, runs=runs):
            x, z_t = teacher(x)
            for r in runs:
                r.step(x, y, z_t)

        def batched(x, y, lane=lane):
            x, z_t = teacher(x)
            lane.step(x, y, z_t)

        out = {"name": f"horizontal{n}", "students": n, "steps": steps}
        for label, fn in (("separate", separate), ("batched", batched)):
            log(f"timing {n} student{'s' if n > 1 else ''} {label}: {warmup} + {steps} steps")
            out[f"{label}_seconds"] = timed(fn, batches, warmup, steps, dev)
            out[f"{label}_per_student_images_per_s"] = steps * pipe.batch_size * n / out[f"{label}_seconds"]
        out["ratio"] = out["separate_seconds"] / out["batched_seconds"]
        cases.append(out)
    return cases
