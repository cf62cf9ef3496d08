"""The golden canary: trained here on every submission and compared with goldens/canary.json.

A change that moves any committed number (a loss, the data stream, the trainer) fails
test_canary_matches_goldens, naming the run, the quantity and both values. A deliberate change
updates the goldens in the same commit: ``python runner.py canary --update``.
"""

import copy
import math

import pytest

from benchmark import canary
from benchmark import config as C
from benchmark.store import Store


@pytest.fixture(scope="module")
def tonight(tmp_path_factory):
    root = tmp_path_factory.mktemp("canary")
    return canary.run(str(root)), Store(root)


def test_canary_matches_goldens(tonight):
    numbers, _ = tonight
    golden = canary.load_golden()
    assert golden is not None, "goldens/canary.json is missing: python runner.py canary --update"
    exact, found = canary.compare(golden, numbers)
    assert found == [], "\n".join(found)


def test_canary_touches_every_loss_family_and_trainer_path(tonight):
    numbers, store = tonight
    cfgs = canary.configs()
    losses = {(c["loss"]["name"], c["loss"].get("tau")) for c in cfgs.values()}
    for family in ("ce", "ls", "ats", "atkd", "mse", "fitnet", "ft"):
        assert any(name == family for name, _ in losses), family
    assert ("kd", math.inf) in losses and ("kd", 4.0) in losses
    teacher = C.run_id(cfgs["teacher-ce"])
    students = [n for n, c in cfgs.items() if (c["teacher"] or {}).get("run") == teacher]
    assert len(students) == 7  # the teacher -> student chain
    for name in students:  # trained as one fused group, every run finished
        res = store.result(C.run_id(cfgs[name]))
        assert res["status"] == "done" and res["execution"]["fused_with"] == 7, name
    assert len(numbers["runs"]["ft"]["init_stage_loss"]) == 1  # the pre-training stage ran
    fitnet = store.result(C.run_id(cfgs["fitnet"]))
    assert fitnet["status"] == "done"
    for run in numbers["runs"].values():
        assert "failed" not in run
        assert len(run["first_steps_loss"]) == 5 and all(math.isfinite(v) for v in run["first_steps_loss"])


def test_compare_is_exact_on_the_same_platform():
    golden = canary.load_golden()
    changed = copy.deepcopy(golden)
    old = changed["runs"]["kd"]["first_steps_loss"][0]
    changed["runs"]["kd"]["first_steps_loss"][0] = math.nextafter(old, math.inf)  # one ulp
    exact, found = canary.compare(golden, changed)
    assert exact and len(found) == 1
    assert found[0].startswith("canary kd: first_steps_loss golden [") and repr(old) in found[0]


def test_compare_across_platforms_uses_the_stated_tolerances():
    golden = canary.load_golden()
    other = copy.deepcopy(golden)
    other["platform"] = {**golden["platform"], "cpu": "some other CPU"}
    run = other["runs"]["ats"]
    run["weights_digest"] = "0" * 64                    # not compared across platforms
    run["first_steps_loss"][1] *= 1 + 1e-6              # float rounding: within rtol 1e-4
    run["top1"] += 100.0 / run["test_images"]           # one test image
    assert canary.compare(golden, other) == (False, [])
    run["epoch_train_loss"][1] *= 1.01                  # a real change
    run["top5"] += 2 * 100.0 / run["test_images"]       # two test images
    exact, found = canary.compare(golden, other)
    assert not exact
    assert sorted(f.split(":")[1].split()[0] for f in found) == ["epoch_train_loss", "top5"]


def test_compare_reports_a_changed_config_and_a_failed_run():
    golden = canary.load_golden()
    other = copy.deepcopy(golden)
    other["runs"]["mse"] = {"id": "0123456789abcdef", "failed": "non-finite loss"}
    del other["runs"]["ls"]
    _, found = canary.compare(golden, other)
    assert any(f.startswith("canary mse: run id") for f in found)
    assert any("canary mse: failed golden None, tonight non-finite loss" == f for f in found)
    assert "canary ls: missing tonight" in found
