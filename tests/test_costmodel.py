"""The cost model (benchmark/catalog/costmodel.py, benchmark/catalog/calibrations.json) against published training
timings (tests/published_timings.yaml), the bounds plan names, and its bad input."""

import json
from pathlib import Path

import pytest
import yaml
from helpers import cli

from benchmark.catalog import costmodel
from benchmark.catalog.flops import forward_flops, layer_count
from benchmark.catalog.plan import Planner
from benchmark.catalog.runcost import estimate_run
from benchmark.errors import BadInput

TIMINGS = yaml.safe_load((Path(__file__).parent / "published_timings.yaml").read_text())
# the bound each row's figure is known to sit at (published-timings.md says so for these)
BOUND = {"hysts-resnet110-gtx980": "overhead", "hysts-wrn28-10-gtx980": "compute",
         "nvidia-rn50-a100-tf32": "compute", "timm-1491-rn50-a100-pillow": "data",
         "h100-a-resnet56-resnet20-c100": "overhead", "h100-b-wrn28-8-c100-fp32": "compute",
         "h100-c-resnet34-resnet18-imagenet-amp": "data"}


def _net(row, key):
    if key == "model" and "flops" in row:
        return costmodel.Net(row["flops"] * 1e9, row["layers"])
    return costmodel.Net(forward_flops(row[key], row["classes"], row["side"]), layer_count(row[key], row["classes"]))


def row_estimate(row) -> costmodel.Estimate:
    work = costmodel.Workload(student=_net(row, "model"), teacher=_net(row, "teacher") if row.get("teacher") else None,
                              train_images=row["train"], test_images=row["test"], batch=row["batch"],
                              eval_batch=row["eval_batch"], epochs=row["epochs"], from_files=row["loader"] != "memory")
    workers = row["loader"] if row["loader"] != "memory" else 1
    return costmodel.estimate(work, costmodel.read_calibration(), row["device"], loader_workers=workers,
                              precision=row["precision"])


def test_the_table_cites_every_row_and_both_roles_are_there():
    assert {r["role"] for r in TIMINGS} == {"calibration", "validation"}
    assert len({r["id"] for r in TIMINGS}) == len(TIMINGS)
    for r in TIMINGS:
        assert "row" in r["source"] or "published-timings.md" in r["source"], r["id"]
        assert r["hours"] > 0 and r["precision"] in costmodel.PRECISIONS


@pytest.mark.parametrize("row", TIMINGS, ids=[r["id"] for r in TIMINGS])
def test_every_estimate_is_within_2x_of_its_published_figure(row):
    est = row_estimate(row)
    ratio = est.hours / row["hours"]
    assert 0.5 <= ratio <= 2.0, f"{row['id']}: estimate {est.hours:.3g} h, published {row['hours']} h ({ratio:.2f}x)"
    if row["id"] in BOUND:
        assert est.bound == BOUND[row["id"]], (row["id"], est.bound, est.seconds)


def _job(planner, spec):
    base = {"dataset": spec["dataset"], "recipe": spec["recipe"]}
    return planner.jobs[planner.job_for(spec, base, "test", "spec")]


KD = {"name": "kd", "tau": 4}
TARGETS = {  # published_timings.yaml's H100 rows, planned from the suite's own recipes
    "a": ({"dataset": "cifar100", "recipe": "repdistiller-cifar", "model": "resnet20",
           "teacher": {"model": "resnet56"}, "loss": KD}, "h100-a-resnet56-resnet20-c100", "reproducible"),
    "b": ({"dataset": "cifar100", "recipe": "ats-cifar", "model": "wrn_28_8"}, "h100-b-wrn28-8-c100-fp32", "reproducible"),
    "c": ({"dataset": "imagenet", "recipe": "heo-imagenet", "model": "resnet18", "teacher": {"model": "resnet34"},
           "loss": KD}, "h100-c-resnet34-resnet18-imagenet-amp", "fast"),
}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_plan_at_the_default_h100_calibration_meets_the_published_targets(target):
    spec, row_id, policy = TARGETS[target]
    row = next(r for r in TIMINGS if r["id"] == row_id)
    planner = Planner("paper", numerics=policy)
    job = _job(planner, spec)
    assert job.config["recipe"]["epochs"] == row["epochs"] and job.config["recipe"]["batch_size"] == row["batch"]
    assert 0.5 <= job.gpu_hours / row["hours"] <= 2.0, (job.gpu_hours, row["hours"])
    assert job.bound == BOUND[row_id]


def test_the_bounds_move_with_what_they_depend_on():
    spec = TARGETS["c"][0]
    fast16 = _job(Planner("paper", numerics="fast"), spec)
    fast4 = _job(Planner("paper", numerics="fast", loader_workers=4), spec)
    assert fast4.bound == "data" and fast4.gpu_hours == pytest.approx(4 * fast16.gpu_hours, rel=0.05)
    fp32 = _job(Planner("paper"), spec)
    assert fp32.gpu_hours >= fast16.gpu_hours  # fp32 without TF32: the compute bound at least reaches the loader's
    # a slower device is slower on every bound the runs hit; the data bound does not depend on the device
    small = TARGETS["a"][0]
    assert _job(Planner("paper", device_kind="v100"), small).gpu_hours > _job(Planner("paper"), small).gpu_hours
    assert _job(Planner("paper", device_kind="v100", numerics="fast", loader_workers=1), spec).bound == "data"


def test_a_measured_rate_replaces_compute_and_overhead_but_not_the_loader():
    spec = TARGETS["c"][0]
    planner = Planner("paper", rate=(1e15, "test"), numerics="fast")
    job = _job(planner, spec)
    assert job.bound == "data"  # a petaFLOP/s engine still waits for 16 PIL workers
    small = _job(Planner("paper", rate=(1e12, "test")), TARGETS["a"][0])
    est = estimate_run(small.config, None, 1e12)
    assert small.bound == est.bound == "measured" and est.seconds["overhead"] == 0.0


def _plan(*argv):
    return cli("plan", "atkd-table5", "--store", *argv)


def test_plan_names_the_bound_and_the_calibration(tmp_path):
    store = str(tmp_path / "store")
    text = _plan(store)
    assert text.returncode == 0, text.stderr
    assert "mostly overhead-bound" in text.stdout and "NVIDIA H100" in text.stdout
    assert "calibration default" in text.stdout and "policy reproducible (fp32)" in text.stdout
    out = _plan(store, "--json", "--device-kind", "a100", "--numerics", "fast", "--loader-workers", "8")
    doc = json.loads(out.stdout)[0]
    for key in ("table", "profile", "cells", "jobs", "pending", "gpu_hours", "cost_model"):  # the contract's keys
        assert key in doc
    cal = doc["calibration"]
    assert (cal["device_kind"], cal["policy"], cal["precision"], cal["loader_workers"]) == ("a100", "fast", "bf16", 8)
    assert cal["measured"] is None
    assert doc["bound"] in ("compute", "overhead") and all(j["bound"] for j in doc["jobs"])
    assert sum(doc["gpu_hours_by_bound"].values()) == pytest.approx(doc["gpu_hours"], abs=1e-3)
    h100 = json.loads(_plan(store, "--json").stdout)[0]
    assert h100["gpu_hours"] < doc["gpu_hours"]  # these small nets are overhead-bound: slower on an A100
    assert not Path(store).exists()


GARBAGE = {
    "not JSON": ("{devices: h100", None, "not JSON"),
    "missing field": ({"loader": {"images_per_s_per_worker": 190}, "devices": {"h100": {
        "peak_tflops": {"fp32": 67, "tf32": 495, "bf16": 989}, "efficiency": {"fp32": 0.8, "tf32": 0.1, "bf16": 0.2}}}},
        "devices.h100.layer_pass_us", "must be a number"),
    "negative rate": ({"loader": {"images_per_s_per_worker": -190}, "devices": {}},
                      "loader.images_per_s_per_worker", "must be positive"),
    "a list": ([1, 2], "(top level)", "must be a mapping"),
}


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_a_garbage_calibration_file_is_one_line_and_exit_2(tmp_path, case):
    doc, field, problem = GARBAGE[case]
    path = tmp_path / "cal.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(BadInput) as err:
        costmodel.read_calibration(path)
    assert err.value.field == field and problem in err.value.problem
    store = tmp_path / "store"
    res = _plan(str(store), "--calibration", str(path))
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert res.returncode == 2 and len(lines) == 1 and str(path) in lines[0] and problem in lines[0], res.stderr
    assert res.stdout == "" and not store.exists()


@pytest.mark.parametrize("argv, needle", [(["--device-kind", "tpu9"], "unknown device kind 'tpu9'"),
                                          (["--numerics", "loose"], "unknown policy 'loose'"),
                                          (["--loader-workers", "0"], "must be at least 1")])
def test_a_bad_cost_option_is_one_line_and_exit_2(tmp_path, argv, needle):
    res = _plan(str(tmp_path / "store"), *argv)
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert res.returncode == 2 and len(lines) == 1 and needle in lines[0] and argv[0] in lines[0], res.stderr
    assert not (tmp_path / "store").exists()
