"""plan's four estimates (benchmark/catalog/scaling.py): which runs fuse, and the estimates' order."""

from benchmark.catalog.plan import Planner
from benchmark.catalog.scaling import fusion_key, scenario_hours
from tests.helpers import REPO


def _cfg(**changes):
    cfg = {"model": "resnet8", "dataset": "cifar100", "data": {"source": "real"}, "seed": 0, "teacher": {"run": "t"},
           "loss": {"name": "kd", "tau": 4.0}, "recipe": {"batch_size": 64, "epochs": 240}}
    return {**cfg, **changes}


def test_seeds_teachers_and_losses_fuse_but_not_another_model_batch_or_length():
    key = fusion_key(_cfg())
    assert key == ("resnet8", "cifar100", "real", 64, 240, None)
    assert fusion_key(_cfg(seed=3, teacher=None, loss={"name": "ce"})) == key
    for other in (_cfg(model="resnet14"), _cfg(dataset="cifar10"), _cfg(data={"source": "synthetic"}),
                  _cfg(recipe={"batch_size": 128, "epochs": 240}), _cfg(recipe={"batch_size": 64, "epochs": 60})):
        assert fusion_key(other) != key


def test_sharing_the_overhead_never_adds_hours(monkeypatch):
    monkeypatch.setenv("KD_REPRO_CATALOG", str(REPO / "tests" / "catalog"))
    planner = Planner("paper")
    plan = planner.plan("klmse-table4")
    jobs = [planner.jobs[j] for j in plan.job_ids]
    h = scenario_hours(jobs, planner)
    assert h["neither"] == round(sum(j.gpu_hours for j in jobs), 4)
    assert h["fusion_and_packing"] <= min(h["packing"], h["fusion"]) and max(h["packing"], h["fusion"]) <= h["neither"]
    assert h["fusion"] < h["neither"]  # six students of one architecture fuse
