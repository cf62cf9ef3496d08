"""The front door's caches: FLOPs per (model, classes, size) and list's rows, each valid for one
stamp only; a Planner without costs plans the same runs."""

import shutil

import pytest

from benchmark import diskcache
from benchmark.catalog import flops, listing
from benchmark.catalog.plan import Planner
from tests.helpers import REPO, cli

CATALOG = REPO / "tests" / "catalog"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KD_REPRO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(flops, "TABLE", tmp_path / "no-table.json")  # the disk cache alone (tests/test_flops.py: the table)
    flops.table.cache_clear()
    flops.forward_flops.cache_clear()
    yield tmp_path / "cache"
    flops.forward_flops.cache_clear()
    flops.table.cache_clear()


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


@pytest.mark.usefixtures("cache")
def test_list_rows_are_replanned_when_a_catalogue_file_changes(tmp_path, monkeypatch):
    root = tmp_path / "catalog"
    shutil.copytree(CATALOG, root)
    monkeypatch.setenv("KD_REPRO_CATALOG", str(root))
    rows = listing.table_rows()
    by_id = {r["table"]: r for r in rows}
    plan = Planner("paper").plan("klmse-table5")
    assert by_id["klmse-table5"]["runs"] == len(plan.job_ids) and by_id["klmse-table5"]["cells"] == len(plan.cells)
    assert listing.table_rows() == rows  # read back
    path = root / "manifests" / "test" / "klmse-table5.yaml"
    path.write_text(path.read_text().replace("grid: {loss.tau: [2.0, 4.0]}", "grid: {loss.tau: [2.0, 4.0, 8.0]}"))
    again = {r["table"]: r for r in listing.table_rows()}
    assert again["klmse-table5"]["runs"] == by_id["klmse-table5"]["runs"] + 1


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


def test_progress_line_shows_epoch_batches_speed_and_eta():
    from types import SimpleNamespace

    from benchmark.commands.reproduce import progress_line, run_eta_s

    p = {"epoch": 2, "epochs": 10, "step": 100, "steps": 400, "images_per_s": 1280.0, "step_s": 0.05}
    # 300 steps left in epoch 3, then 7 epochs of 400 steps, at 0.05 s per step
    assert run_eta_s(p) == pytest.approx((300 + 7 * 400) * 0.05)
    assert run_eta_s({"epoch": 0, "epochs": 10}) is None  # not measured yet: no made-up ETA
    running = SimpleNamespace(state="running", lease={"progress": p}, config={"model": "resnet32"})
    starting = SimpleNamespace(state="running", lease={"progress": {}}, config={"model": "resnet8",
                                                                                "recipe": {"epochs": 240}})
    line = progress_line({"a": running, "b": starting})
    assert line == "resnet32 e3/10 b100/400 1280 img/s ETA 3min, resnet8 e1/240"


def test_failures_are_grouped_by_reason_with_counts_and_a_way_to_retry():
    from types import SimpleNamespace

    from benchmark.commands.reproduce import failure_summary

    def run(rid, state, reason):
        return SimpleNamespace(id=rid, state=state, reason=reason, config={"model": "resnet8"})

    missing = "MissingData: ./data/cifar-100-python: folder not found; get it with `python runner.py data download cifar100`"
    states = {f"t{i}": run(f"t{i}", "failed", missing) for i in range(3)}
    states["x"] = run("x", "failed", "RunFailed: non-finite training loss (nan) in epoch 1\nTraceback ...")
    states.update({f"s{i}": run(f"s{i}", "blocked", "depends on t0, which failed or is blocked") for i in range(5)})
    states["d"] = run("d", "done", None)
    lines = failure_summary(states)
    assert lines[0].startswith("4 failed, 5 blocked")
    assert lines[1] == f"  3 x {missing}" and lines[2] == "  1 x RunFailed: non-finite training loss (nan) in epoch 1"
    assert "--failures" in lines[3] and "--retry-failed" in lines[-1]
    assert len(lines) == 5  # grouped: not one line per run
    full = failure_summary(states, full=True)
    assert sum(line.startswith("  failed ") for line in full) == 4 and sum(line.startswith("  blocked ") for line in full) == 5
    assert failure_summary({"d": states["d"]}) == []
