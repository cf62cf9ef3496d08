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

``smoke`` (the whole pipeline on a CPU in minutes, on data its teachers learn):
  - the generated stand-in of the dataset (``data.source: synthetic``; same class count, its size
    set by the data registry, benchmark/engine/data) instead of the real data; a 32-px stand-in
    (CIFAR, SVHN) is generated at SMOKE_SIDE px with SMOKE_PER_CLASS training images per class
    (``data.synthetic.image_size``, ``per_class``) unless its recipe sizes the stand-in itself;
  - SMOKE_EPOCHS epochs on such a shrunk stand-in, the schedule's shape kept as quick keeps it
    (scale_recipe), its ResNet blocks started as their shortcuts (``recipe.zero_init_residual``);
    one epoch on the others, with BatchNorm statistics re-estimated after it
    (``recipe.bn_recalibration``);
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
from ..engine.data import DATASETS
from ..errors import BadInput
from ..schema import METHODS, method_defaults

PROFILES = ("smoke", "quick", "paper")

QUICK_FRACTION = 0.25

# --profile's help (cli.py): the list above in one line, next to the numbers it quotes
HELP = (f"paper (as published), quick (1/{round(1 / QUICK_FRACTION)} of the epochs, every other grid point, "
        "one seed) or smoke (generated data, a few short epochs, the first grid point, one seed)")

# Smoke runs' pre-training stages run at this fraction of their ``init_lr``. A smoke teacher is an
# untrained stand-in: a deep one (ResNet110, WRN-40-2) has stage maps of RMS 5-10, where FSP's
# unweighted Gram-matrix loss starts near 1e5 and diverges at the paper's 0.05 (measured: NaN within
# 16 steps) and at 0.005 (ResNet110 -> ResNet32), and stays finite at 0.0005. Quick and paper runs
# keep the published rate; the run's config records the rate it ran.
SMOKE_STAGE_LR_SCALE = 0.01

# A smoke run on a 32-px stand-in (CIFAR-10/100, SVHN) trains SMOKE_EPOCHS epochs on SMOKE_PER_CLASS
# training images per class generated at SMOKE_SIDE px, the schedule's shape kept (repdistiller-cifar's
# second epoch runs at its first decayed rate), its ResNet blocks started as their shortcuts
# (``recipe.zero_init_residual``), without BatchNorm re-estimation. Measured on CIFAR-100's stand-in
# (one thread, the dev machine shared and loaded; CPU seconds of atkd-table5's five fused teachers):
# - one 32-px epoch of 10 images per class (16 steps of 64), the profile before: every network at
#   chance (teachers 1.0-4.5 %);
# - 8 px costs about a third of 16 px per image, 16 px a third of 32 px (resnet20 alone);
# - without the zero start the deep teachers stayed at chance (resnet56 4.5 %, resnet110 2.0 %);
# - what teaches is the number of steps at the top rate: 2 epochs of 40 per class (63 of 126 steps
#   at the top rate) gave teachers 14.0-26.0 % in 133 s (175 s re-estimating BN after each epoch,
#   15.7-27.8 %); 3 epochs of 24 per class (76 of 114 steps; milestones [2, 2, 3]) 13.75, 17.25,
#   14.0, 18.5, 25.0 % (ResNet32, 20, 44, 56, 110) in 113 s, and the ResNet14 students 5.5-9.5 %
#   (KD) and 8.0-14.75 % (ATKD); 2 x 32 and 3 x 20 per class left resnet44 at 8.5 and 10.25 %,
#   6 x 12 (76 of 114 steps too) gave resnet20/44 22.75/21.5 % at 1.1x the cost of 3 x 24;
# - after ~38 steps an epoch the momentum statistics are current: without re-estimation the
#   teachers lose 0-2 points, no feature student diverges (FSP, FT, VID, AB from ResNet110 and
#   WRN-40-2, atkd-table3), and a teacher run costs 23 % less.
# The 64-px stand-ins (TinyImageNet, and CUB, Dogs, ImageNet reduced from 224 px) keep their side,
# the smallest that AlexNet's conv stack takes, their size and one epoch: they test the pipeline.
SMOKE_SIDE = 8
SMOKE_PER_CLASS = 24
SMOKE_EPOCHS = 3
SHRUNK_STAND_IN = 32  # the stand-in side (benchmark/engine/data's synthetic_size) that smoke shrinks


# What a report says above a table produced at each profile (report.py, site.py).
WARNING = {
    "smoke": "**Smoke profile: generated stand-in data, a few short epochs. These numbers test the pipeline; "
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
        shrunk = shrinks(raw["dataset"], raw["data"])
        data = {**raw["data"], "source": "synthetic"}
        if shrunk:
            data["synthetic"] = {**(data.get("synthetic") or {}), "image_size": SMOKE_SIDE, "per_class": SMOKE_PER_CLASS}
        raw = {**raw, "data": data}
        # One epoch of ~16 steps leaves BatchNorm running statistics stale; through a deep
        # stand-in teacher (ResNet56/110) they inflate eval-mode feature maps 5-50x, and the
        # feature methods' published weights and rates then diverge (FSP, FT, VID). One-epoch
        # smoke runs therefore re-estimate them after the epoch; a shrunk stand-in's SMOKE_EPOCHS
        # epochs of ~38 steps leave them current (see above); paper and quick runs never do.
        raw["recipe"] = {**smoke_recipe(raw["recipe"], SMOKE_EPOCHS), "zero_init_residual": True} if shrunk \
            else {**raw["recipe"], "epochs": 1, "bn_recalibration": True}
    elif profile == "quick":
        raw = {**raw, "recipe": scale_recipe(raw["recipe"], QUICK_FRACTION)}
    if not uses_files(profile):
        raw = {**raw, "init": None}
    return {**raw, "loss": scale_loss_params(raw["loss"], profile)}


def shrinks(dataset, data) -> bool:
    """Whether smoke generates this run's stand-in smaller, with more images, and trains it
    SMOKE_EPOCHS epochs: a 32-px stand-in whose size the run leaves to the profile. A recipe that
    sizes its stand-in itself (``data.synthetic``: the tests' tiny recipe) keeps it and one epoch;
    an unknown dataset is left for config.resolve to report."""
    spec = DATASETS.get(dataset) if isinstance(dataset, str) else None
    own = data.get("synthetic") if isinstance(data, dict) else None
    sized = isinstance(own, dict) and any(own.get(k) is not None for k in ("image_size", "per_class", "test_per_class"))
    return spec is not None and spec.synthetic_size == SHRUNK_STAND_IN and not sized


def smoke_recipe(recipe: dict, epochs: int) -> dict:
    """The recipe at ``epochs`` epochs, its schedule's shape kept as scale_recipe keeps it."""
    total = recipe.get("epochs", config.RECIPE_DEFAULTS["epochs"])
    if not isinstance(total, int) or isinstance(total, bool) or total < 1:
        return {**recipe, "epochs": epochs}  # checked (and rejected) before a profile applies
    return {**scale_recipe(recipe, epochs / total), "epochs": epochs}


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
