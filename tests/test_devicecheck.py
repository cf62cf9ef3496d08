"""device-check: exit 2 without CUDA, a dry run on the CPU that passes and writes its report and a
calibration `plan` accepts, and no way to pass with a failed or skipped step."""

import dataclasses
import json

import pytest
import torch

from benchmark.commands import devicecheck as D
from tests.helpers import cli


def one_line(res) -> str:
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, res.stderr
    return lines[0]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """The whole dry run, once (about 30 s of CPU: the canary is most of it)."""
    out = tmp_path_factory.mktemp("device-check") / "out"
    res = cli("device-check", "--dry-run-cpu", "--out", out)
    return res, out


def test_without_cuda_it_exits_2_with_one_line_and_writes_nothing(tmp_path, monkeypatch):
    if torch.cuda.is_available():  # on a GPU machine, the same path as a machine without one
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "out"
    res = cli("device-check", "--out", out)
    line = one_line(res)
    assert res.returncode == 2 and "no CUDA device" in line and "--dry-run-cpu" in line
    assert not out.exists()


def test_the_dry_run_passes_and_writes_every_step(dry_run):
    res, out = dry_run
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads((out / D.JSON_FILE).read_text())
    assert report["passed"] and report["dry_run_cpu"] and report["torch"] == torch.__version__
    assert [s["name"] for s in report["steps"]] == [s.name for s in D.STEPS]
    steps = {s["name"]: s for s in report["steps"]}
    assert all(s["seconds"] > 0 for s in report["steps"])
    # CUDA-only by nature: its steps ran on the CPU, its numbers do not apply there
    assert {n: s["status"] for n, s in steps.items()} == {**{s.name: "passed" for s in D.STEPS},
                                                          "memory_syncs": "not_applicable"}
    assert steps["memory_syncs"]["peak_memory_mib"] is None and steps["memory_syncs"]["steps"] == 2
    assert set(steps["agreement"]["losses_max_rel_diff"]) == {"ce", "ls", "kd", "ats", "atkd", "mse"}
    assert steps["resume_fused"]["resume"]["identical"] and steps["resume_fused"]["fused"]["identical"]
    assert steps["resume_fused"]["resume"]["resumed_from_epoch"] == 1
    assert steps["canary"]["comparison"] and steps["canary"]["differences"] == []
    assert {(b["policy"], b["batch_size"]) for b in steps["throughput"]["bench"].values()} == \
        {(p, b) for p in ("reproducible", "strict", "fast") for b in (2, 4)}
    assert steps["decode"]["images_per_s_per_worker"] > 0 and steps["decode"]["images"] == 8
    # issue 26's measurements by bench's functions, in small form: fusion N = 1, 2, packing K = 1, 2, both decoders
    scaling = steps["scaling"]
    assert set(scaling["horizontal_ratio_vs_separate"]) == {"1", "2"}
    assert set(scaling["packing_ratio_vs_one_process"]) == {"1", "2"} and scaling["packing_ratio_vs_one_process"]["1"] == 1
    assert set(scaling["decode"]) == {"pil", "nvjpeg"} and all(d["images_per_s"] > 0 for d in scaling["decode"].values())
    md = (out / D.MD_FILE).read_text()
    assert "dry run on the CPU" in md and "| memory_syncs | not_applicable |" in md
    assert "horizontal fusion, separate / batched time: N=1:" in md
    assert all(f"| {n} | passed |" in md for n in steps if n != "memory_syncs")


def test_the_calibration_is_accepted_by_plan(dry_run, tmp_path):
    _, out = dry_run
    cal = out / D.CALIBRATION_FILE
    doc = json.loads(cal.read_text())
    assert "CPU measurement" in doc["devices"][D.MEASURED_KIND]["name"] and doc["measured_by"]["dry_run_cpu"]
    report = json.loads((out / D.JSON_FILE).read_text())
    decode = next(s for s in report["steps"] if s["name"] == "decode")
    assert doc["loader"]["images_per_s_per_worker"] == decode["images_per_s_per_worker"]
    res = cli("plan", "atkd-table5", "--profile", "smoke", "--store", tmp_path / "store", "--json",
              "--calibration", cal, "--device-kind", D.MEASURED_KIND)
    assert res.returncode == 0, res.stderr
    plan = json.loads(res.stdout)[0]
    assert plan["calibration"]["device_kind"] == D.MEASURED_KIND and plan["calibration"]["file"] == str(cal)
    assert plan["gpu_hours"] > 0


def test_a_failed_comparison_makes_the_exit_code_1(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "STEPS", D.STEPS[:1])  # agreement alone: seconds, not the whole dry run
    assert cli("device-check", "--dry-run-cpu", "--out", tmp_path / "ok").returncode == 0
    monkeypatch.setattr(D, "max_rel_diff", lambda *_: 1.0)
    res = cli("device-check", "--dry-run-cpu", "--out", tmp_path / "bad")
    assert res.returncode == 1
    step = json.loads((tmp_path / "bad" / D.JSON_FILE).read_text())["steps"][0]
    assert step["status"] == "failed" and "loss ce: 1 > 1e-05" in step["why"]


def test_a_step_over_its_own_budget_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "STEPS", (dataclasses.replace(D.STEPS[0], budget_s=0),))
    res = cli("device-check", "--dry-run-cpu", "--out", tmp_path)
    step = json.loads((tmp_path / D.JSON_FILE).read_text())["steps"][0]
    assert res.returncode == 1 and step["status"] == "failed" and "over its budget" in step["why"]


def test_a_step_skipped_for_the_budget_is_not_passed(tmp_path):
    res = cli("device-check", "--dry-run-cpu", "--budget", "0", "--out", tmp_path)
    assert res.returncode == 1
    report = json.loads((tmp_path / D.JSON_FILE).read_text())
    assert not report["passed"] and [s["status"] for s in report["steps"]] == ["skipped"] * len(D.STEPS)
    assert "| canary | skipped |" in (tmp_path / D.MD_FILE).read_text()
    assert not (tmp_path / D.CALIBRATION_FILE).exists()  # nothing measured, nothing fitted


@pytest.mark.parametrize("case", ["a file", "under a file", "report name is a folder", "negative budget"])
def test_bad_out_or_budget_is_one_line_exit_2_and_nothing_written(tmp_path, case):
    f = tmp_path / "taken"
    f.write_text("mine")
    out, extra, needle = {"a file": (f, [], "is a file, not a folder"),
                          "under a file": (f / "out", [], "is a file, not a folder"),
                          "report name is a folder": (tmp_path / "dir", [], "is a folder, not a file"),
                          "negative budget": (tmp_path / "new", ["--budget", "-1"], "--budget")}[case]
    if case == "report name is a folder":
        (out / D.JSON_FILE).mkdir(parents=True)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    res = cli("device-check", "--dry-run-cpu", "--out", out, *extra)
    assert res.returncode == 2 and needle in one_line(res) and res.stdout == ""
    assert sorted(p.name for p in tmp_path.rglob("*")) == before and f.read_text() == "mine"


def test_a_step_that_raises_fails_and_the_next_one_still_runs(tmp_path, monkeypatch):
    def boom(_check):  # a Step's function gets the check
        raise RuntimeError("an op with no deterministic kernel\nsecond line")

    monkeypatch.setattr(D, "STEPS", (D.Step("boom", boom, 60), D.STEPS[0]))
    res = cli("device-check", "--dry-run-cpu", "--out", tmp_path)
    steps = json.loads((tmp_path / D.JSON_FILE).read_text())["steps"]
    assert res.returncode == 1 and [s["status"] for s in steps] == ["failed", "passed"]
    assert steps[0]["why"] == "raised RuntimeError: an op with no deterministic kernel"


def test_not_applicable_passes_on_the_dry_run_only(monkeypatch):
    monkeypatch.setattr(D, "STEPS", tuple(s for s in D.STEPS if s.name == "memory_syncs"))
    for dry_run in (True, False):  # the CPU as if it were the device: the rule, not the measurement
        report = D._run_steps(D.Check("cpu", dry_run), "cpu", 480, lambda _message: None)
        assert report["steps"][0]["status"] == "not_applicable" and report["passed"] is dry_run
