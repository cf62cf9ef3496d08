
import pytest

from benchmark.engine import config as C
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


def test_epoch_sharpness_gap_needs_a_teacher():
    """ATKD Fig. 2's per-epoch gap: off by default (no id moves), refused at config time without a teacher."""
    assert C.resolve(tiny())["recipe"]["epoch_sharpness_gap"] is False
    with pytest.raises(BadInput) as err:
        C.resolve(tiny(recipe={"epoch_sharpness_gap": True}))
    assert "recipe.epoch_sharpness_gap" in str(err.value) and "needs a teacher" in str(err.value)
