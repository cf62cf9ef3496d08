"""Packing (issue 26): K workers per visible GPU, only the masked GPUs, the bad inputs, and plan's
GPU-hours with and without packing and fusion (bench's packing cases: tests/test_packbench.py).

The machine's GPUs are a list the tests give (packing.place/visible_devices take the inventory
as an argument) or a stand-in `nvidia-smi` on PATH: the seam where the suite reads the machine."""

from __future__ import annotations

import argparse
import os
import stat

import pytest

from benchmark import cli
from benchmark.catalog import costmodel
from benchmark.commands import reproduce
from benchmark.errors import BadInput
from benchmark.runs import packing
from benchmark.store.layout import Store

FOUR = [packing.Gpu(i, f"GPU-{i}abc", 80 * 2**30) for i in range(4)]


def test_a_masked_machine_packs_two_workers_on_each_masked_gpu_and_no_other():
    placed = packing.place("cuda", 2, env={"CUDA_VISIBLE_DEVICES": "1,3"}, inventory=FOUR)
    assert placed.workers == 4 and placed.per_gpu == 2
    assert placed.masks == ["1", "3", "1", "3"]
    unmasked = packing.place("cuda", 2, env={}, inventory=FOUR)
    assert unmasked.masks == ["0", "1", "2", "3"] * 2
    by_uuid = packing.place("cuda", 3, env={"CUDA_VISIBLE_DEVICES": "GPU-2abc"}, inventory=FOUR)
    assert by_uuid.masks == ["GPU-2abc"] * 3
    # --workers N is the total, spread round-robin over the mask
    assert packing.place("cuda", 2, workers=3, env={"CUDA_VISIBLE_DEVICES": "2,0"}, inventory=FOUR).masks == \
        ["2", "0", "2"]


def test_each_launched_worker_receives_one_masked_gpu_as_its_own_mask(tmp_path, monkeypatch):
    started = []

    class RecordingPopen:  # what the worker processes would be started with (their env)
        def __init__(self, cmd, env, **_kw):
            started.append((cmd, env))
    monkeypatch.setattr(reproduce.subprocess, "Popen", RecordingPopen)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,3")
    store = Store(tmp_path)
    store.queue_dir.mkdir(parents=True)
    placed = packing.place("cuda", 2, inventory=FOUR)  # the parent's own environment's mask
    reproduce.launch_local(store, store.queue_dir / "jobs.txt", placed.workers, "cuda", [], placed.masks)
    assert [env["CUDA_VISIBLE_DEVICES"] for _, env in started] == ["1", "3", "1", "3"]
    assert all(cmd[cmd.index("--device") + 1] == "cuda" for cmd, _ in started)


def test_a_slurm_task_takes_one_gpu_of_its_jobs_mask():
    assert [packing.task_mask("4,6", r) for r in range(4)] == ["4", "6", "4", "6"]
    assert packing.task_mask(None, 3) is None and packing.task_mask("", 0) is None


@pytest.mark.parametrize("mask,words", [("7", "no GPU '7'"), ("0,0", "twice"), ("", "names no GPU"),
                                        ("GPU-zzz", "no GPU 'GPU-zzz'"), ("0,,1", "empty entry")])
def test_a_mask_naming_a_gpu_the_machine_lacks_is_bad_input(mask, words):
    with pytest.raises(BadInput) as err:
        packing.visible_devices({"CUDA_VISIBLE_DEVICES": mask}, FOUR[:1])
    assert err.value.where == "CUDA_VISIBLE_DEVICES" and words in err.value.problem


def test_the_cpu_ignores_the_mask_and_shares_its_cores():
    placed = packing.place("cpu", 2, env={"CUDA_VISIBLE_DEVICES": "7"}, inventory=FOUR[:1])
    assert placed.workers == 2 and placed.masks is None
    assert packing.place("cpu", None, inventory=[]).workers == 1  # auto: 1 on the CPU, as before
    packing.check_mask("cpu", env={"CUDA_VISIBLE_DEVICES": "7"}, inventory=FOUR[:1])  # not checked
    packing.check_mask("cuda", "slurm", env={"CUDA_VISIBLE_DEVICES": "7"}, inventory=FOUR[:1])  # the nodes' own


def _fake_nvidia_smi(folder, gpus: int) -> str:
    """A stand-in nvidia-smi that lists ``gpus`` GPUs the way the real one answers the query."""
    script = folder / "nvidia-smi"
    lines = "\\n".join(f"{i}, GPU-{i}fake, 81000" for i in range(gpus))
    script.write_text(f"#!/bin/sh\nprintf '{lines}\\n'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(folder)


def test_cli_a_mask_naming_a_missing_gpu_exits_2_with_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", _fake_nvidia_smi(bin_dir, 1) + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    assert [g.index for g in packing.gpu_inventory()] == [0]
    store = tmp_path / "store"
    code = cli.main(["reproduce", "klmse-table5", "--profile", "smoke", "--store", str(store),
                     "--workers-per-gpu", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "CUDA_VISIBLE_DEVICES" in err[0] and "'7'" in err[0], err
    assert not store.exists()


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_cli_workers_per_gpu_below_one_or_not_a_number_exits_2(tmp_path, capsys, value):
    store = tmp_path / "store"
    code = cli.main(["reproduce", "klmse-table5", "--profile", "smoke", "--store", str(store), "--device", "cpu",
                     f"--workers-per-gpu={value}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --workers-per-gpu:"), err
    assert not store.exists()


def test_the_fusion_switch_is_checked_in_the_same_place():
    with pytest.raises(BadInput) as err:
        cli._choice_args(argparse.Namespace(horizontal="maybe"))
    assert err.value.where == "--horizontal"
    cli._choice_args(argparse.Namespace(horizontal="on", workers_per_gpu="auto"))


# ---------------------------------------------------------------- auto


def _shape(bound="overhead", batch=64, students=8):
    return packing.RunShape("resnet20", "resnet56", 100, 32, batch, bound, 1.0, students)


def test_auto_packs_launch_bound_runs_as_far_as_memory_cores_and_the_cap_allow():
    run = _shape()
    need = packing.CUDA_CONTEXT_BYTES + packing.MEMORY_SLACK * packing.memory_bytes(run)
    roomy = [packing.Gpu(0, "GPU-0", 80 * 2**30)]
    assert packing.auto_per_gpu([run], roomy, 1, cpus=16)[0] == packing.MAX_AUTO
    two = [packing.Gpu(0, "GPU-0", int(2.5 * need / packing.FREE_FRACTION))]
    assert packing.auto_per_gpu([run], two, 1, cpus=16)[0] == 2
    assert packing.auto_per_gpu([run], roomy, 1, cpus=3)[0] == 3  # a core per worker
    assert packing.auto_per_gpu([_shape("compute")], roomy, 1, cpus=16)[0] == 1  # not launch-bound
    assert packing.auto_per_gpu([run], [None], 1, cpus=16)[0] == 1  # free memory unknown
    placed = packing.place("cuda", None, runs=[run], env={"CUDA_VISIBLE_DEVICES": "1"}, inventory=FOUR, cpus=16)
    assert placed.masks == ["1"] * packing.MAX_AUTO and "auto" in placed.why


def test_the_memory_estimate_counts_the_real_networks():
    import torch

    from benchmark.engine.models import build_model

    params, acts = packing.net_counts("resnet8", 10, 32)
    assert params == sum(p.numel() for p in build_model("resnet8", 10).parameters())
    assert acts > 16 * 32 * 32  # at least the first convolution's output
    small, big = packing.memory_bytes(_shape(batch=32)), packing.memory_bytes(_shape(batch=64))
    assert big > small > 0
    del torch


# ---------------------------------------------------------------- plan


def test_the_scaling_divisors_and_a_bad_scaling_section():
    s = costmodel.read_calibration().scaling
    assert s.packing_divisor() == 1 + (s.workers_per_gpu - 1) * s.overlap
    assert s.fusion_divisor(1) == 1 and s.fusion_divisor(2) == 2 and s.fusion_divisor(100) == s.fusion_factor
    assert s.fusion_upper_bound == 15 and not s.measured
    with pytest.raises(BadInput) as err:
        costmodel.parse_calibration({"loader": {"images_per_s_per_worker": 1}, "devices": {
            "x": {"peak_tflops": dict.fromkeys(costmodel.PRECISIONS, 1), "efficiency": dict.fromkeys(
                costmodel.PRECISIONS, 1), "layer_pass_us": 1}}, "scaling": {"packing_overlap": 2}}, "f.json")
    assert err.value.field == "scaling.packing_overlap"


def test_plan_ats_table2_states_its_gpu_hours_with_and_without_fusion_and_packing(tmp_path, capsys):
    assert cli.main(["plan", "ats-table2", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("GPU time left with packing"))
    assert "with horizontal fusion" in line and "with both" in line and "with neither" in line
    assert "modelled, not measured on a GPU" in line and "up to 15x" in line
    hours = [float(w) for w in __import__("re").findall(r"([\d.]+) h\b", line)]
    packed, fused, both, neither = hours[:4]
    # overhead-bound students: each share shortens the plan, both together most, none below compute
    assert both < packed < neither and both < fused < neither


@pytest.mark.heavy
def test_a_submitit_job_packs_k_worker_tasks(tmp_path, monkeypatch):
    """The SLURM path on submitit's local executor: one job, --workers-per-gpu 2: two worker tasks
    drain the store together (on the CPU they share its cores)."""
    from tests.helpers import REPO
    from tests.helpers import cli as run_cli

    monkeypatch.setenv("KD_REPRO_CATALOG", str(REPO / "tests" / "catalog"))
    proc = run_cli("reproduce", "klmse-table5", "--profile", "smoke", "--store", tmp_path, "--device", "cpu",
                   "--quiet", "--launcher", "submitit-local", "--workers", "1", "--workers-per-gpu", "2",
                   "--no-report")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "submitted 1 worker job(s)" in proc.stdout and "runs: 4 done" in proc.stdout
    logs = sorted(p.name for p in (tmp_path / "submitit").rglob("*_log.out"))
    assert [name.split("_")[1] for name in logs] == ["0", "1"], logs  # task 0 and task 1 of the job
