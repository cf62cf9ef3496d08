"""What a profile (smoke, quick, paper; docs/CONTRACTS.md) does to a run: the one place that answers
"what does smoke change?".

The planner (benchmark/catalog/plan.py) asks this module for every decision a profile makes, before a
run's config is resolved and hashed, so a smoke or quick run never shares an id with a paper run.

``paper``: the manifest as written; nothing changes.

``quick`` (a trend check on the real data):
  - epochs x QUICK_FRACTION (at least 1), the schedule's shape kept: milestones, learning-rate
    warm-up and the epochs of a loss schedule scaled alike (scale_recipe);
  - a feature method's pre-training stage epochs (``init_epochs``) and loss warm-up
    (``warmup_epochs``) scaled alike (scale_loss_params);
  - every other grid point (the first, the third, ...) and the first seed (ensembles keep their
    members).

``smoke`` (the whole pipeline on a CPU in minutes):
  - the generated stand-in of the dataset (``data.source: synthetic``; same class count, its size
    set by the data registry, benchmark/engine/data) instead of the real data;
  - one epoch, with BatchNorm statistics re-estimated after it (``recipe.bn_recalibration``);
  - no pretrained files: ``init`` weights are dropped, and zoo teachers that name a checkpoint or
    torchvision file are trained as jobs like any other teacher (uses_files);
  - a feature method: one stage epoch, no loss warm-up, and its stages at SMOKE_STAGE_LR_SCALE
    times their ``init_lr``;
  - the first grid point and the first seed (ensembles keep their members).

Nothing else differs: the trainer reads only the config it is given (``bn_recalibration`` is a
recipe key like any other), and a report says which profile produced its numbers (WARNING);
only paper numbers are judged against the paper's (judged).

Importing this module imports no torch: the command line takes its choices (PROFILES) from here.
"""

from __future__ import annotations

import copy

from ..engine import config, schedules
from ..errors import BadInput
from ..schema import METHODS, method_defaults

PROFILES = ("smoke", "quick", "paper")

QUICK_FRACTION = 0.25

# --profile's help (cli.py): the list above in one line, next to the numbers it quotes
HELP = (f"paper (as published), quick (1/{round(1 / QUICK_FRACTION)} of the epochs, every other grid point, "
        "one seed) or smoke (generated data, 1 epoch, the first grid point, one seed)")

# Smoke runs' pre-training stages run at this fraction of their ``init_lr``. A smoke teacher is an
# untrained stand-in: a deep one (ResNet110, WRN-40-2) has stage maps of RMS 5-10, where FSP's
# unweighted Gram-matrix loss starts near 1e5 and diverges at the paper's 0.05 (measured: NaN within
# 16 steps) and at 0.005 (ResNet110 -> ResNet32), and stays finite at 0.0005. Quick and paper runs
# keep the published rate; the run's config records the rate it ran.
SMOKE_STAGE_LR_SCALE = 0.01


# What a report says above a table produced at each profile (report.py, site.py).
WARNING = {
    "smoke": "**Smoke profile: generated stand-in data, one short epoch. These numbers test the pipeline; "
             "they are NOT comparable to the paper's.**",
    "quick": "**Quick profile: a quarter of the paper's epochs, a reduced grid, one seed. A trend check; "
             "the numbers are NOT comparable to the paper's.**",
    "paper": "Paper profile: the paper's data, recipe, grid and seeds.",
}


def judged(profile: str) -> bool:
    """Whether a profile's numbers are judged against the paper's (within / outside). Only paper
    runs are: smoke and quick cells are ``not comparable`` (parameter counts, measured without
    training, are judged at every profile)."""
    return profile == "paper"


def check(profile: str) -> None:
    if profile not in PROFILES:
        raise BadInput("--profile", None, f"must be one of {', '.join(PROFILES)}, got {profile!r}")


def seeds(profile: str, manifest_seeds: list[int]) -> list[int]:
    """The seeds a cell runs: the manifest's under paper, else only the first."""
    return list(manifest_seeds) if profile == "paper" else manifest_seeds[:1]


def grid(profile: str, points: list) -> list:
    """The grid points a cell runs: all (paper), every other (quick), the first (smoke)."""
    if profile == "smoke":
        return points[:1]
    if profile == "quick":
        return points[::2]
    return points


def uses_files(profile: str) -> bool:
    """Whether runs start from files (pretrained ``init`` weights, teacher checkpoints, torchvision
    weights). Smoke trains on a generated stand-in, for which no such file was made."""
    return profile != "smoke"


def apply(profile: str, raw: dict) -> dict:
    """A run config as the manifest gives it (``raw``, before config.resolve), changed as the
    profile says; ``raw`` itself is left as it was."""
    if profile == "smoke":
        raw = {**raw, "data": {**raw["data"], "source": "synthetic"}}
        # One epoch of ~16 steps leaves BatchNorm running statistics stale; through a deep
        # stand-in teacher (ResNet56/110) they inflate eval-mode feature maps 5-50x, and the
        # feature methods' published weights and rates then diverge (FSP, FT, VID). Smoke runs
        # therefore re-estimate them after the epoch; paper and quick runs never do.
        raw["recipe"] = {**raw["recipe"], "epochs": 1, "bn_recalibration": True}
    elif profile == "quick":
        raw = {**raw, "recipe": scale_recipe(raw["recipe"], QUICK_FRACTION)}
    if not uses_files(profile):
        raw = {**raw, "init": None}
    return {**raw, "loss": scale_loss_params(raw["loss"], profile)}


def scale_recipe(recipe: dict, fraction: float) -> dict:
    """Shorter training with the same schedule shape (quick profile): milestones, warm-up and the
    epochs of a loss schedule scaled alike."""
    recipe = copy.deepcopy(recipe)
    epochs = recipe.get("epochs", config.RECIPE_DEFAULTS["epochs"])
    recipe["epochs"] = max(1, round(epochs * fraction))
    sched = recipe.get("schedule")
    if isinstance(sched, dict):
        if isinstance(sched.get("milestones"), list):
            sched["milestones"] = [max(1, round(m * fraction)) for m in sched["milestones"]]
        if sched.get("warmup_epochs"):
            sched["warmup_epochs"] = max(1, round(sched["warmup_epochs"] * fraction))
    if recipe.get("loss_schedule"):
        recipe["loss_schedule"] = schedules.scale_loss_schedule(recipe["loss_schedule"], fraction)
    return recipe


def scale_loss_params(loss: dict, profile: str) -> dict:
    """A method's own schedule under the profile. The epoch counts among its options shrink as the
    recipe's do: ``init_epochs`` (a pre-training stage: AB, FT, FSP, IE-AT; smoke 1) and
    ``warmup_epochs`` (ReviewKD's and DKD's loss warm-up; smoke 0, so its one epoch trains with the
    whole loss). Smoke also scales a stage's ``init_lr`` by SMOKE_STAGE_LR_SCALE (stand-in teachers)."""
    if profile == "paper" or not isinstance(loss, dict) or loss.get("name") not in METHODS:
        return loss
    defaults = method_defaults(loss["name"])
    out = dict(loss)
    for key, smoke in (("init_epochs", 1), ("warmup_epochs", 0.0)):
        if key not in defaults:
            continue
        value = loss.get(key, defaults[key])
        if not _positive_number(value):
            continue  # validated (and rejected) with the rest of the loss later
        if profile == "smoke":
            out[key] = type(value)(smoke)
        elif isinstance(value, int):
            out[key] = max(1, round(value * QUICK_FRACTION))
        else:
            out[key] = value * QUICK_FRACTION
    init_lr = loss.get("init_lr", defaults.get("init_lr"))
    if profile == "smoke" and _positive_number(init_lr):
        out["init_lr"] = float(init_lr) * SMOKE_STAGE_LR_SCALE
    return out


def _positive_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
