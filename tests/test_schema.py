"""The config schema (benchmark/schema.py): its declared checks name the field, its choices and the
methods' defaults are the code's."""

import math

import pytest

from benchmark import schema
from benchmark.engine import config as C
from benchmark.errors import BadInput
from tests.helpers import tiny

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


def test_the_identity_leaves_out_every_default_and_what_is_not_the_training():
    cfg = C.resolve(tiny())
    ident = schema.identity(cfg)
    assert ident == {"dataset": "cifar10", "model": "resnet8", "data": {"source": "synthetic", **(
        {"synthetic": ident["data"]["synthetic"]} if "synthetic" in ident["data"] else {})},
        "recipe": ident["recipe"], "loss": {"name": "ce"}}
    moved = tiny()
    moved["data"]["root"] = "/elsewhere"
    moved["recipe"] = {**moved.get("recipe", {}), "report_epoch": "best", "final_train_eval": False}
    moved["note"] = "a note"
    assert C.run_id(C.resolve(moved)) == C.run_id(cfg)  # where the data lives, the reported epoch, a note
    ckpt = {"checkpoint": "/a/teacher.pt", "sha256": "ab" * 32, "model": "resnet8"}
    a = C.resolve(tiny(loss={"name": "kd"}, teacher=ckpt))
    b = C.resolve(tiny(loss={"name": "kd"}, teacher={**ckpt, "checkpoint": "/b/copy.pt"}))
    assert C.run_id(a) == C.run_id(b)  # a checkpoint teacher by its digest, not its path
    # conditional defaults: KD's student temperature follows tau; ATKD's code forms set their own
    t = {"run": "0" * 16}
    assert C.run_id(C.resolve(tiny(loss={"name": "kd", "tau": 2.0, "student_tau": 2.0}, teacher=t))) == \
        C.run_id(C.resolve(tiny(loss={"name": "kd", "tau": 2.0}, teacher=t)))
    code = C.resolve(tiny(loss={"name": "atkd", "form": "code2020"}, teacher=t))
    assert schema.identity(code)["loss"] == {"name": "atkd", "form": "code2020"}
    assert code["loss"]["multiplier"] == 2.0 and code["loss"]["eps"] == 1e-7
