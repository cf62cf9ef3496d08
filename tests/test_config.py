import ast
import math
import sys
from pathlib import Path

import pytest

from benchmark import spec
from benchmark.engine import config as C
from benchmark.engine import schedules as S
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
    assert "bn_recalibration" not in C.identity(base).get("recipe", {})
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


def test_an_option_at_its_default_is_left_out_of_the_id_and_any_other_value_is_in_it():
    """The id hashes what differs from the schema's defaults: naming an option at its default is
    the same run, and every other value of a choice is another run."""
    from benchmark.schema import METHODS

    teacher = {"run": "0" * 16}
    for loss in ("kd", "atkd", "ats", "mse"):
        cfg = C.resolve(tiny(loss={"name": loss}, teacher=teacher))
        assert C.identity(cfg)["loss"] == {"name": loss}
        for option, opt in METHODS[loss].items():
            if opt.kind != "choice":
                continue
            named = C.resolve(tiny(loss={"name": loss, option: cfg["loss"][option]}, teacher=teacher))
            assert C.run_id(named) == C.run_id(cfg), (loss, option)
            for other in opt.choices:
                if other == cfg["loss"][option]:
                    continue
                try:
                    changed = C.resolve(tiny(loss={"name": loss, option: other}, teacher=teacher))
                except BadInput:  # a combination the loss refuses (an ATKD code form's fixed option)
                    continue
                assert C.run_id(changed) != C.run_id(cfg), (loss, option, other)


def test_spec_and_schema_are_leaves():
    """spec.py (run ids, spec merging) is imported by config, plan, manifest and store, and builds
    ids from schema.py: an import of any other package module from either would bring back the cycle
    they exist to break (and the schema must be readable without torch)."""
    from benchmark import schema

    for module, allowed in ((spec, {"schema"}), (schema, set())):
        tree = ast.parse(Path(module.__file__).read_text())
        imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level] + \
            [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        relative = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level}
        assert imported and all(m in sys.stdlib_module_names or m == "__future__" for m in imported), imported
        assert relative == allowed, (module.__name__, relative)


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
    assert S.lr_at(r, 0) == pytest.approx(0.01)
    assert S.lr_at(r, 4) == pytest.approx(0.05)
    assert S.lr_at(r, 149) == pytest.approx(0.05)
    assert S.lr_at(r, 150) == pytest.approx(0.005)
    assert S.lr_at(r, 239) == pytest.approx(0.00005)
    cos = C.resolve(tiny(recipe={"epochs": 10, "optimizer": {"lr": 0.1}, "schedule": {"name": "cosine"}}))["recipe"]
    assert S.lr_at(cos, 0) == pytest.approx(0.1)
    assert S.lr_at(cos, 5) == pytest.approx(0.05)
    assert S.lr_at(cos, 9) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.9)))


BAD_FIELDS = [
    ({"recipe": {"epochs": 0}}, "recipe.epochs", "must be >= 1"),
    ({"recipe": {"epochs": 2.5}}, "recipe.epochs", "must be an integer"),
    ({"recipe": {"batch_size": True}}, "recipe.batch_size", "must be an integer"),
    ({"recipe": {"drop_last": "yes"}}, "recipe.drop_last", "true or false"),
    ({"recipe": {"report_epoch": "median"}}, "recipe.report_epoch", "must be one of last, best"),
    ({"recipe": {"init_scheme": "xavier"}}, "recipe.init_scheme", "must be one of torch, ats_code"),
    ({"recipe": {"optimizer": {"lr": -0.1}}}, "recipe.optimizer.lr", "must be >= 0"),
    ({"recipe": {"optimizer": {"momentum": math.nan}}}, "recipe.optimizer.momentum", "finite"),
    ({"recipe": {"schedule": {"name": "multistep", "milestones": [1], "gamma": -1}}}, "recipe.schedule.gamma", ">= 0"),
    ({"recipe": {"schedule": {"name": "cosine", "warmup_epochs": -1}}}, "recipe.schedule.warmup_epochs", ">= 0"),
    ({"data": {"source": "web"}}, "data.source", "must be one of real, synthetic"),
    ({"data": {"synthetic": {"per_class": 0}}}, "data.synthetic.per_class", "must be >= 1"),
    ({"data": {"synthetic": {"image_size": 4096}}}, "data.synthetic.image_size", "must be <= 1024"),
]


@pytest.mark.parametrize("change, field, problem", BAD_FIELDS, ids=[f for _, f, _ in BAD_FIELDS])
def test_the_schemas_declared_checks_refuse_bad_values_naming_the_field(change, field, problem):
    raw = tiny()
    for key, value in change.items():
        raw[key] = {**raw.get(key, {}), **value}
    with pytest.raises(BadInput) as err:
        C.resolve(raw, "run.yaml")
    assert err.value.field == field and problem in err.value.problem


def test_the_schemas_choices_are_the_codes():
    from benchmark.engine.init_schemes import INIT_SCHEMES
    from benchmark.engine.losses import CHOICES
    from benchmark.schema import CONFIG_FIELDS, METHODS

    assert CONFIG_FIELDS["recipe.init_scheme"].choices == INIT_SCHEMES
    assert METHODS["kd"]["tau_scale"].choices == CHOICES["tau_scale"]
    assert METHODS["atkd"]["tau_scale"].choices == CHOICES["atkd_tau_scale"]
    assert METHODS["atkd"]["form"].choices == CHOICES["form"]
    for name in ("kd", "ats", "atkd", "mse"):
        assert METHODS[name]["reduction"].choices == CHOICES["reduction"]


def test_declared_method_defaults_are_the_codes():
    """The schema (what ids and checks read) and the methods' own signatures/PARAMS agree."""
    from benchmark.engine.distillers import distiller_defaults, distiller_names
    from benchmark.engine.losses import ATKD_FORM_DEFAULTS, loss_defaults, loss_names, make_loss
    from benchmark.schema import check_method_options, method_defaults

    for name in loss_names():
        assert method_defaults(name) == loss_defaults(name), name
        assert check_method_options(name, {}) == make_loss(name).params, name
    for form in ATKD_FORM_DEFAULTS:
        assert check_method_options("atkd", {"form": form}) == make_loss("atkd", form=form).params, form
    for name in distiller_names():
        assert method_defaults(name) == distiller_defaults(name), name
