"""The front door's caches: FLOPs per (model, classes, size) and list's rows, each valid for one
stamp only; a Planner without costs plans the same runs."""

import pytest

from benchmark import diskcache
from benchmark.catalog import flops, listing
from benchmark.catalog.plan import Planner
from tests import caches
from tests.helpers import REPO, cli

cache = caches.cache  # the fixture: a private FLOPs and list cache

CATALOG = REPO / "tests" / "catalog"


@pytest.mark.usefixtures("cache")
def test_flops_are_counted_once_and_read_back_only_under_the_same_stamp():
    counted = flops.count_forward_flops("resnet8", 10, 32)
    assert flops.forward_flops("resnet8", 10, 32) == counted
    assert diskcache.read("flops", flops.stamp()) == {"resnet8|10|32": counted}
    # a value in the file is what a later process gets, without counting ...
    diskcache.update("flops", flops.stamp(), {"resnet8|10|32": 123.0})
    flops.forward_flops.cache_clear()
    assert flops.forward_flops("resnet8", 10, 32) == 123.0
    # ... but only under the current stamp (torch version, model code): another one is ignored
    diskcache.update("flops", "torch 0.0, models 0", {"resnet8|10|32": 7.0})
    flops.forward_flops.cache_clear()
    assert flops.forward_flops("resnet8", 10, 32) == counted


def test_an_unwritable_cache_only_costs_time(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("KD_REPRO_CACHE", str(blocker))
    monkeypatch.setattr(flops, "TABLE", tmp_path / "no-table.json")
    flops.table.cache_clear()
    flops.forward_flops.cache_clear()
    assert flops.forward_flops("resnet8", 10, 32) == flops.count_forward_flops("resnet8", 10, 32)
    flops.forward_flops.cache_clear()
    flops.table.cache_clear()


def test_a_planner_without_costs_plans_the_same_runs(monkeypatch):
    monkeypatch.setenv("KD_REPRO_CATALOG", str(CATALOG))
    costed, free = Planner("paper"), Planner("paper", cost=False)
    for name in ("klmse-table4", "klmse-table5"):
        assert costed.plan(name).job_ids == free.plan(name).job_ids
    assert all(j.gpu_hours > 0 for j in costed.jobs.values())
    assert all(j.gpu_hours == 0 for j in free.jobs.values())


def test_a_download_without_network_says_so_in_one_line_and_keeps_nothing(tmp_path, monkeypatch):
    """The network refused for real (a proxy on a closed local port), the real torchvision download."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "mine.txt").write_text("a user's file")
    for root in (tmp_path / "fresh", tmp_path / "keep"):
        proc = cli("data", "download", "cifar10", "--data-root", root)
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "download failed" in lines[0], proc.stderr
    assert not (tmp_path / "fresh").exists()
    assert sorted(p.name for p in (tmp_path / "keep").iterdir()) == ["mine.txt"]


@pytest.mark.usefixtures("cache")
def test_model_rows_are_the_built_models_and_read_back():
    from benchmark.engine.models import describe_models

    rows = listing.model_rows(10)
    assert rows == describe_models(10)
    assert diskcache.read("models", flops.stamp())["10"] == rows
    assert listing.model_rows(10) == rows
    assert diskcache.read("models", "torch 0.0, models 0") == {}


def test_the_step_hook_counts_batches_inside_each_epoch(tmp_path):
    from benchmark.engine import config as C
    from benchmark.engine.execution import ExecOptions
    from benchmark.engine.train import train_run
    from benchmark.store.layout import Store
    from tests.helpers import tiny

    calls = []
    cfg = C.resolve(tiny(recipe={"epochs": 2}))  # 240 images, batch 32: 8 steps per epoch
    options = ExecOptions(on_step=calls.append, step_every=3)
    assert train_run(cfg, Store(tmp_path / "s"), options)["status"] == "done"
    assert all(c["steps"] == 8 and c["epochs"] == 2 and c["images"] == 32 * c["step"] for c in calls)
    assert calls[0]["runs"] == [C.run_id(cfg)]
    assert [(c["epoch"], c["step"]) for c in calls] == [(1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6), (1, 7),
                                                          (2, 1), (2, 2), (2, 3), (2, 4), (2, 5), (2, 6), (2, 7)]
    calls.clear()  # a longer epoch (60 steps, more than 8 x step_every): every step_every steps
    cfg = C.resolve(tiny(recipe={"epochs": 1, "batch_size": 4}))  # 60 steps
    assert train_run(cfg, Store(tmp_path / "s"), ExecOptions(on_step=calls.append, step_every=5))["status"] == "done"
    assert [c["step"] for c in calls] == list(range(5, 60, 5)) and calls[0]["steps"] == 60
