"""The recipe's schedules, pure functions of the epoch (so a checkpoint needs no scheduler object to
resume exactly): the learning rate (warm-up, then multistep or cosine), the scheduled loss options
(``recipe.loss_schedule``), and a loss schedule's epochs scaled as the quick profile scales the
milestones. Validation of a config is config.py's."""

from __future__ import annotations

import math


def schedule_steps(steps) -> list | None:
    """A schedule's steps as [[epoch, value], ...] in the order given, from either spelling
    ({epoch: value} or a list of pairs); None if neither."""
    if isinstance(steps, dict):
        return [[e, v] for e, v in steps.items()]
    if isinstance(steps, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in steps):
        return [list(p) for p in steps]
    return None


def loss_params_at(recipe: dict, epoch: int) -> dict:
    """The scheduled loss options at a 0-based epoch (each the value of its last step at or before
    the epoch); {} without a schedule. A pure function of the epoch, so resuming needs no state."""
    schedule = recipe.get("loss_schedule") or {}
    return {option: [v for e, v in steps if e <= epoch][-1] for option, steps in schedule.items()}


def scale_loss_schedule(schedule, fraction: float):
    """A schedule's epochs scaled like the milestones of the quick profile (0 stays 0, others at
    least 1); steps that land on one epoch keep the later one. A malformed schedule is returned
    unchanged for resolve() to reject."""
    if not isinstance(schedule, dict):
        return schedule
    out = {}
    for option, raw_steps in schedule.items():
        steps = schedule_steps(raw_steps)
        if steps is None or any(isinstance(e, bool) or not isinstance(e, int) for e, _ in steps):
            return schedule
        scaled: dict[int, object] = {}
        for e, v in sorted(steps, key=lambda p: p[0]):
            scaled[e if e == 0 else max(1, round(e * fraction))] = v
        out[option] = [[e, v] for e, v in scaled.items()]
    return out


def lr_at(recipe: dict, epoch: int) -> float:
    """Learning rate for a 0-based epoch: warm-up, then the schedule. A pure function of the epoch,
    so the checkpoint needs no scheduler object to resume it exactly."""
    base = recipe["optimizer"]["lr"]
    sched = recipe["schedule"]
    warm = sched.get("warmup_epochs", 0)
    if epoch < warm:
        return base * (epoch + 1) / warm
    if sched["name"] == "multistep":
        return base * sched["gamma"] ** sum(epoch >= m for m in sched["milestones"])
    if sched["name"] == "cosine":
        span = max(1, recipe["epochs"] - warm)
        t = (epoch - warm) / span
        return sched["min_lr"] + (base - sched["min_lr"]) * 0.5 * (1 + math.cos(math.pi * t))
    return base
