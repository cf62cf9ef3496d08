"""The schedules (benchmark/engine/schedules.py): the learning rate per epoch, and
recipe.loss_schedule: per-epoch loss options (ATKD's ImageNet code), resolved, hashed, applied,
resumed and fused."""

import json
import math

import pytest

from benchmark.engine import config as C
from benchmark.engine import schedules as S
from benchmark.engine.execution import ExecOptions
from benchmark.engine.train import train_run, train_runs
from benchmark.errors import BadInput
from benchmark.store.layout import Store
from tests.helpers import small_feature_run, stop_after_epoch, teacher_checkpoint, tiny

KD = {"name": "kd", "tau": 4.0, "ce_weight": 0.1, "kd_weight": 0.9}
STEPS = {"kd_weight": {0: 0.9, 1: 0.5, 2: 0.1}, "ce_weight": {0: 0.1, 1: 0.5, 2: 0.9}}


def scheduled(teacher, loss=KD, schedule=STEPS, epochs=3):
    cfg = small_feature_run(teacher, loss, epochs)
    return C.resolve({**cfg, "recipe": {**cfg["recipe"], "loss_schedule": schedule}})


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return teacher_checkpoint(tmp_path_factory.mktemp("teacher"), "resnet8", seed=3)


def test_resolved_form_is_canonical_and_absent_schedules_keep_run_ids(teacher):
    cfg = scheduled(teacher)
    assert cfg["recipe"]["loss_schedule"] == {"kd_weight": [[0, 0.9], [1, 0.5], [2, 0.1]],
                                              "ce_weight": [[0, 0.1], [1, 0.5], [2, 0.9]]}
    # the list spelling, in another order, is the same run; a resolved config resolves to itself
    pairs = {"ce_weight": [[2, 0.9], [0, 0.1], [1, 0.5]], "kd_weight": [[0, 0.9], [1, 0.5], [2, 0.1]]}
    assert C.run_id(scheduled(teacher, schedule=pairs)) == C.run_id(cfg)
    assert C.resolve(cfg) == cfg
    assert C.resolve(json.loads(json.dumps(cfg))) == cfg  # as the store reads config.json back
    # without a schedule the run id is the one a config without the field always had
    plain = small_feature_run(teacher, KD, 3)
    assert "loss_schedule" not in C.identity(plain).get("recipe", {})
    assert C.run_id(C.resolve({**plain, "recipe": {**plain["recipe"], "loss_schedule": None}})) == C.run_id(plain)
    assert C.run_id(cfg) != C.run_id(plain)


def test_values_per_epoch_and_quick_scaling():
    recipe = {"loss_schedule": {"kd_weight": [[0, 0.9], [60, 0.5], [80, 0.1]]}}
    assert [S.loss_params_at(recipe, e)["kd_weight"] for e in (0, 59, 60, 79, 80, 99)] == [0.9, 0.9, 0.5, 0.5, 0.1, 0.1]
    assert S.loss_params_at({"loss_schedule": None}, 5) == {}
    assert S.scale_loss_schedule({"kd_weight": {0: 0.9, 60: 0.5, 80: 0.1}}, 0.25) == \
        {"kd_weight": [[0, 0.9], [15, 0.5], [20, 0.1]]}
    # steps that land on one epoch: the later one holds from there
    assert S.scale_loss_schedule({"kd_weight": {0: 0.9, 2: 0.5, 3: 0.1}}, 0.25) == {"kd_weight": [[0, 0.9], [1, 0.1]]}


@pytest.mark.parametrize("schedule,problem", [
    ({"kd_wieght": {0: 0.9}}, "not an option of loss 'kd'"),
    ({"kd_weight": {1: 0.9}}, "must start at epoch 0"),
    ({"kd_weight": {0: 0.5, 60: 0.1}}, "differs from the loss's kd_weight=0.9"),
    ({"kd_weight": {0: 0.9, -1: 0.1}}, "must be >= 0"),
    ({"tau": {0: 4.0, 2: -1.0}}, "at epoch 2: loss 'kd': tau must be"),
    ({"kd_weight": {0: 0.9, 2: "high"}}, "at epoch 2"),
    ({"kd_weight": 0.9}, "non-empty mapping"),
    ([0.9], "must be null or a mapping"),
])
def test_bad_schedules_name_the_field(teacher, schedule, problem):
    with pytest.raises(BadInput, match="recipe.loss_schedule") as err:
        scheduled(teacher, schedule=schedule)
    assert problem in str(err.value)


def test_feature_methods_are_refused(teacher):
    with pytest.raises(BadInput, match="logit losses"):
        scheduled(teacher, loss={"name": "fitnet"}, schedule={"weight": {0: 100.0}})


def test_applied_per_epoch_and_recorded(teacher, tmp_path):
    store = Store(tmp_path)
    cfg = scheduled(teacher)
    res = train_run(cfg, store, ExecOptions())
    assert [m["loss_params"] for m in store.metrics(res["id"])] == [
        {"kd_weight": 0.9, "ce_weight": 0.1}, {"kd_weight": 0.5, "ce_weight": 0.5}, {"kd_weight": 0.1, "ce_weight": 0.9}]
    assert res["config"]["recipe"]["loss_schedule"] == cfg["recipe"]["loss_schedule"]
    # a step after the last epoch changes nothing: the same weights as the fixed loss, bit for bit
    late = train_run(scheduled(teacher, schedule={"kd_weight": {0: 0.9, 3: 0.1}}), store, ExecOptions())
    fixed = train_run(small_feature_run(teacher, KD, 3), store, ExecOptions())
    assert late["weights_digest"] == fixed["weights_digest"] and late["id"] != fixed["id"]
    # and a step inside the run does change them
    assert res["weights_digest"] != fixed["weights_digest"]


def test_a_run_killed_mid_schedule_resumes_bit_identically(teacher, tmp_path):
    cfg = scheduled(teacher)
    full = train_run(cfg, Store(tmp_path / "full"), ExecOptions())
    store = Store(tmp_path / "killed")
    stop_after_epoch(cfg, store)
    resumed = train_run(cfg, store, ExecOptions())
    assert resumed["resumed_from_epoch"] == 1
    assert (resumed["metrics"], resumed["weights_digest"]) == (full["metrics"], full["weights_digest"])
    assert [m["loss_params"]["kd_weight"] for m in store.metrics(resumed["id"])] == [0.9, 0.5, 0.1]


def test_fused_runs_with_a_schedule_equal_apart(teacher, tmp_path):
    atkd = {"name": "atkd", "form": "code2020", "ce_weight": 0.1, "kd_weight": 0.9}
    cfgs = [scheduled(teacher), scheduled(teacher, loss=atkd)]
    fused = train_runs(cfgs, Store(tmp_path / "fused"), ExecOptions())
    for cfg in cfgs:
        apart = train_run(cfg, Store(tmp_path / "apart"), ExecOptions())
        got = fused[apart["id"]]
        assert got["execution"]["fused_with"] == 2
        assert (got["metrics"], got["weights_digest"]) == (apart["metrics"], apart["weights_digest"])


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
