import ast
import math
import sys
from pathlib import Path

import pytest

from benchmark import config as C
from benchmark import spec
from benchmark.errors import BadInput
from tests.helpers import tiny


def test_defaults_filled_and_id_is_stable():
    a = C.resolve(tiny())
    assert a["recipe"]["optimizer"]["momentum"] == 0.9
    assert a["loss"]["name"] == "ce"
    assert C.run_id(a) == C.run_id(C.resolve(tiny()))
    assert C.is_run_id(C.run_id(a))


def test_explicit_default_gives_same_id():
    implicit = C.resolve(tiny(loss={"name": "kd"}, teacher={"run": "0" * 16}))
    explicit = C.resolve(tiny(loss={"name": "kd", "tau": implicit["loss"]["tau"]}, teacher={"run": "0" * 16}))
    assert C.run_id(implicit) == C.run_id(explicit)


def test_bn_recalibration_off_keeps_the_ids_it_had_before_the_field_existed():
    base = C.resolve(tiny())
    assert base["recipe"]["bn_recalibration"] is False
    assert "bn_recalibration" not in C.identity(base)["recipe"]
    assert C.run_id(C.resolve(tiny(recipe={"bn_recalibration": True}))) != C.run_id(base)
    with pytest.raises(BadInput, match="bn_recalibration"):
        C.resolve(tiny(recipe={"bn_recalibration": "yes"}))


def test_a_changed_config_is_a_new_run_but_the_data_root_is_not():
    base = C.resolve(tiny())
    assert C.run_id(C.resolve(tiny(seed=1))) != C.run_id(base)
    assert C.run_id(C.resolve(tiny(recipe={"epochs": 4}))) != C.run_id(base)
    moved = tiny()
    moved["data"]["root"] = "/somewhere/else"
    assert C.run_id(C.resolve(moved)) == C.run_id(base)


def test_id_neutral_options_are_the_losses_defaults():
    """An option left out of the id at its neutral value must be the loss's default: otherwise a
    config that never names the option would train one loss and carry another loss's old id."""
    from benchmark.losses import CHOICES, make_loss

    for loss, options in spec.ID_NEUTRAL.items():
        made = make_loss(loss)
        for option, neutral in options.items():
            assert made.params[option] == neutral, (loss, option)
            cfg = C.resolve(tiny(loss={"name": loss}, teacher={"run": "0" * 16}))
            assert option not in C.identity(cfg)["loss"]
            other = next(v for v in CHOICES[option] if v != neutral)
            changed = C.resolve(tiny(loss={"name": loss, option: other}, teacher={"run": "0" * 16}))
            assert C.run_id(changed) != C.run_id(cfg)


def test_spec_is_a_leaf():
    """spec.py (run ids, spec merging) is imported by config, plan, manifest and store: an import of
    any package module from it would bring back the cycle it exists to break."""
    tree = ast.parse(Path(spec.__file__).read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)] + \
        [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert imported and all(m in sys.stdlib_module_names or m == "__future__" for m in imported), imported
    assert not any(n.level for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))


@pytest.mark.parametrize("change, field", [
    ({"model": "resnet9000"}, "model"),
    ({"dataset": "mnist"}, "dataset"),
    ({"loss": {"name": "nope"}}, "loss"),
    ({"loss": {"name": "kd", "tau": "hot"}}, "loss"),
    ({"loss": {"name": "kd"}}, "teacher"),
    ({"recipe": {"epochs": 0}}, "recipe.epochs"),
    ({"recipe": {"batch_size": 2.5}}, "recipe.batch_size"),
    ({"recipe": {"report_epoch": "median"}}, "recipe.report_epoch"),
    ({"recipe": {"schedule": {"name": "multistep", "milestones": [5, 2]}}}, "recipe.schedule.milestones"),
    ({"recipe": {"schedule": {"name": "cosine", "milestones": [5]}}}, "recipe.schedule.milestones"),
    ({"recipe": {"optimiser": {}}}, "recipe.optimiser"),
    ({"teacher": {"run": "../../etc"}}, "teacher.run"),
    ({"teacher": {"checkpoint": "t.pt", "sha256": "abc", "model": "resnet56"}}, "teacher.sha256"),
    ({"colour": "blue"}, "colour"),
    ({"seed": -1}, "seed"),
])
def test_bad_fields_name_the_field(change, field):
    with pytest.raises(BadInput) as err:
        C.resolve(tiny(**change), where="my.yaml")
    assert err.value.field == field
    assert err.value.message().startswith("my.yaml: ")


def test_lr_schedules():
    r = C.resolve(tiny(recipe={"epochs": 240, "optimizer": {"lr": 0.05},
                               "schedule": {"name": "multistep", "milestones": [150, 180, 210], "gamma": 0.1,
                                            "warmup_epochs": 5}}))["recipe"]
    assert C.lr_at(r, 0) == pytest.approx(0.01)
    assert C.lr_at(r, 4) == pytest.approx(0.05)
    assert C.lr_at(r, 149) == pytest.approx(0.05)
    assert C.lr_at(r, 150) == pytest.approx(0.005)
    assert C.lr_at(r, 239) == pytest.approx(0.00005)
    cos = C.resolve(tiny(recipe={"epochs": 10, "optimizer": {"lr": 0.1}, "schedule": {"name": "cosine"}}))["recipe"]
    assert C.lr_at(cos, 0) == pytest.approx(0.1)
    assert C.lr_at(cos, 5) == pytest.approx(0.05)
    assert C.lr_at(cos, 9) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.9)))
