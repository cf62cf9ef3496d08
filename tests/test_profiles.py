"""The profiles (benchmark/catalog/profiles.py): what paper, quick and smoke each change in a run config,
and that the command line can read them without torch (through the planner: tests/test_plan.py)."""

import copy
import subprocess
import sys

import pytest

from benchmark.catalog import profiles
from benchmark.errors import BadInput
from tests.helpers import REPO


def test_profiles_apply_says_what_each_profile_changes():
    """The rules of benchmark/catalog/profiles.py's docstring, one by one, on a run config as plan builds it."""
    raw = {"dataset": "cifar100", "data": {"augment": "standard", "root": "/data"}, "model": "wrn_16_2",
           "loss": {"name": "ab", "init_epochs": 30, "init_lr": 0.2}, "init": {"weights": "w.pth", "sha256": None}, "seed": 3,
           "recipe": {"epochs": 240, "schedule": {"name": "multistep", "milestones": [150, 180, 210],
                                                  "warmup_epochs": 5},
                      "loss_schedule": {"kd_weight": {0: 0.9, 60: 0.5}}}}
    before = copy.deepcopy(raw)
    assert profiles.apply("paper", raw) == before
    quick = profiles.apply("quick", raw)
    assert quick["recipe"] == {"epochs": 60, "schedule": {"name": "multistep", "milestones": [38, 45, 52],
                                                          "warmup_epochs": 1},
                               "loss_schedule": {"kd_weight": [[0, 0.9], [15, 0.5]]}}
    assert quick["loss"] == {"name": "ab", "init_epochs": 8, "init_lr": 0.2}  # a quarter, rounded
    assert (quick["data"], quick["init"], quick["seed"]) == (raw["data"], raw["init"], raw["seed"])
    smoke = profiles.apply("smoke", raw)
    # a 32-px stand-in: generated smaller, with more images, for a few epochs of the schedule's shape
    assert smoke["data"] == {"augment": "standard", "root": "/data", "source": "synthetic",
                             "synthetic": {"image_size": profiles.SMOKE_SIDE, "per_class": profiles.SMOKE_PER_CLASS}}
    # (its momentum statistics are current after SMOKE_EPOCHS epochs: no BatchNorm re-estimation)
    assert smoke["recipe"] == {"epochs": 3, "schedule": {"name": "multistep", "milestones": [2, 2, 3], "warmup_epochs": 1},
                               "loss_schedule": {"kd_weight": [[0, 0.9], [1, 0.5]]}, "zero_init_residual": True}
    assert profiles.SMOKE_EPOCHS == 3
    # a recipe that sizes its stand-in itself (the test catalog's tiny one) keeps it and one epoch
    own = profiles.apply("smoke", {**raw, "data": {"synthetic": {"per_class": 3, "image_size": None}}})
    assert own["data"] == {"source": "synthetic", "synthetic": {"per_class": 3, "image_size": None}}
    assert own["recipe"] == {**raw["recipe"], "epochs": 1, "bn_recalibration": True}
    assert profiles.apply("smoke", {**raw, "data": {"synthetic": {"per_class": None}}})["recipe"]["epochs"] == 3
    # a 64-px stand-in keeps its side, its size and one epoch
    tin = profiles.apply("smoke", {**raw, "dataset": "tinyimagenet"})
    assert tin["data"] == {"augment": "standard", "root": "/data", "source": "synthetic"}
    assert tin["recipe"] == {**raw["recipe"], "epochs": 1, "bn_recalibration": True}
    assert smoke["init"] is None and not profiles.uses_files("smoke") and profiles.uses_files("quick")
    assert smoke["loss"] == {"name": "ab", "init_epochs": 1, "init_lr": pytest.approx(0.2 * profiles.SMOKE_STAGE_LR_SCALE)}
    assert raw == before  # the planner's spec is never changed in place
    assert profiles.grid("paper", [1, 2, 3]) == [1, 2, 3]
    assert profiles.grid("quick", [1, 2, 3]) == [1, 3] and profiles.grid("smoke", [1, 2, 3]) == [1]
    assert profiles.seeds("paper", [0, 1, 2]) == [0, 1, 2]
    assert profiles.seeds("quick", [0, 1, 2]) == [0] == profiles.seeds("smoke", [0, 1, 2])
    with pytest.raises(BadInput, match="--profile"):
        profiles.check("fast")


def test_profiles_and_spec_import_no_torch():
    """The command line takes its --profile choices from profiles.py before it knows a command."""
    code = ("import sys, benchmark.catalog.profiles, benchmark.spec; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
