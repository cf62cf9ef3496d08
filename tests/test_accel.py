"""Accelerations: the exact ones change no number, the others stay close, all are recorded;
the cost model uses measured throughput."""

import argparse
import shutil

import pytest
import torch

from benchmark.catalog.flops import forward_flops
from benchmark.catalog.plan import Planner
from benchmark.catalog.summary import table_summary
from benchmark.engine import accel as A
from benchmark.engine import config as C
from benchmark.engine.accel import Accel
from benchmark.engine.execution import ExecOptions
from benchmark.engine.train import train_run
from benchmark.runs import throughput
from benchmark.store.layout import Store
from tests.helpers import tiny, tiny32, trained_teacher


def cifar_resnet_flops(n: int, classes: int, side: int = 32) -> int:
    """Forward FLOPs of one side x side image (a multiple of 4) through RepDistiller's resnet(6n+2),
    by hand: 2 x MACs of the convolutions and the classifier (BN, ReLU and pooling are not counted)."""
    conv = 2 * 3 * 3  # FLOPs per input channel x output channel x output pixel of a 3x3 convolution
    full, half, quarter = side * side, (side // 2) ** 2, (side // 4) ** 2
    stem = conv * 3 * 16 * full
    # every 3x3 convolution but the stem and the two downsampling ones costs the same:
    # 16x16 channels at full size = 32x32 channels at half = 64x64 channels at a quarter
    same = conv * 16 * 16 * full
    down = conv * 16 * 32 * half + 2 * 16 * 32 * half  # 16->32 at half size, and its 1x1 shortcut
    down += conv * 32 * 64 * quarter + 2 * 32 * 64 * quarter  # 32->64 at a quarter, and its 1x1 shortcut
    return stem + (6 * n - 2) * same + down + 2 * 64 * classes


def test_hand_counted_flops():
    # resnet20 at 100 classes: 81.6 MFLOP (40.8M multiply-adds, the usual quoted figure)
    assert cifar_resnet_flops(3, 100) == 81_637_888
    assert forward_flops("resnet20", 100, 32) == cifar_resnet_flops(3, 100)
    assert forward_flops("resnet56", 100, 32) == cifar_resnet_flops(9, 100)
    assert forward_flops("resnet14", 10, 32) == cifar_resnet_flops(2, 10)
    assert forward_flops("resnet14", 10, 8) == cifar_resnet_flops(2, 10, side=8)  # the tests' stand-in


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return trained_teacher(tmp_path_factory.mktemp("teacher"))


@pytest.fixture(scope="module")
def teacher32(tmp_path_factory):
    """At 32 px: the tolerances of the inexact accelerations (one fused multiply-add, NHWC's
    summation order) were set there."""
    return trained_teacher(tmp_path_factory.mktemp("teacher32"), tiny32)


def kd_student(tid, raw=tiny):
    return C.resolve(raw(teacher={"run": tid}, loss={"name": "kd", "tau": 4.0}, recipe={"epochs": 1}))


def run_with(accel, teacher, tmp_path, name, raw=tiny):
    tstore, tid = teacher
    store = Store(tmp_path / name)
    store.mark_layout()  # a store of this code's layout, not one of runs copied in without a record
    shutil.copytree(tstore.run_dir(tid), store.run_dir(tid))
    return train_run(kd_student(tid, raw), store, ExecOptions(accel=accel))


def logits_of(result, tmp_path, name):
    return torch.load(Store(tmp_path / name).run_dir(result["id"]) / "test_logits.pt", weights_only=True)["logits"]


@pytest.fixture(scope="module")
def plain(teacher, tmp_path_factory):
    """The default execution (foreach SGD, no other acceleration), trained once."""
    root = tmp_path_factory.mktemp("plain")
    result = run_with(Accel(), teacher, root, "plain")
    return result, logits_of(result, root, "plain")


@pytest.fixture(scope="module")
def plain32(teacher32, tmp_path_factory):
    """``plain`` at 32 px."""
    root = tmp_path_factory.mktemp("plain32")
    result = run_with(Accel(), teacher32, root, "plain", tiny32)
    return result, logits_of(result, root, "plain")


def test_foreach_sgd_the_default_is_exact(plain, teacher, tmp_path):
    default, _ = plain
    loop = run_with(Accel(sgd="loop"), teacher, tmp_path, "loop")
    assert default["weights_digest"] == loop["weights_digest"] and default["metrics"] == loop["metrics"]
    assert default["execution"]["sgd"] == "foreach" and loop["execution"]["sgd"] == "loop"


def test_compile_aot_eager_is_exact(plain, teacher, tmp_path):
    """aot_eager traces the model and runs the same aten kernels: on the CPU the same bits, not
    merely close ones (weights, test logits and every metric)."""
    from torch._dynamo.utils import counters

    default, z = plain
    counters.clear()
    traced = run_with(Accel(compile="aot_eager"), teacher, tmp_path, "aot_eager")
    assert counters["stats"]["unique_graphs"] >= 1  # the compiled forward ran (else the test proves nothing)
    assert traced["execution"]["compile"] == "aot_eager"
    assert traced["weights_digest"] == default["weights_digest"] and traced["metrics"] == default["metrics"]
    assert torch.equal(logits_of(traced, tmp_path, "aot_eager"), z)


@pytest.mark.parametrize("accel, atol", [
    (Accel(sgd="fused"), 1e-3),           # one fused multiply-add per element rounds differently
    (Accel(channels_last=True), 1e-3),    # NHWC convolutions sum in another order
], ids=["sgd-fused", "channels_last"])
def test_accelerations_keep_the_numbers(accel, atol, plain32, teacher32, tmp_path):
    default, z = plain32
    fast = run_with(accel, teacher32, tmp_path, "fast", tiny32)
    for key, value in accel.record().items():
        if value != Accel().record()[key]:
            assert fast["execution"][key] == value  # the result says which ran
    zf = logits_of(fast, tmp_path, "fast")
    assert torch.allclose(zf, z, rtol=0, atol=atol), (zf - z).abs().max()
    assert fast["metrics"]["train_loss"] == pytest.approx(default["metrics"]["train_loss"], rel=1e-4)


def test_bf16_autocast_runs_on_the_cpu_and_is_recorded(plain, teacher, tmp_path):
    default, _ = plain
    bf16 = run_with(Accel(amp="bf16"), teacher, tmp_path, "bf16")
    assert bf16["status"] == "done" and bf16["execution"]["amp"] == "bf16"
    # different numerics (that is why it is off by default), but the same training
    assert bf16["weights_digest"] != default["weights_digest"]
    assert bf16["metrics"]["train_loss"] == pytest.approx(default["metrics"]["train_loss"], rel=0.05)


def test_determinism_is_on_everywhere_by_default_and_cuda_only_flags_are_off_on_the_cpu():
    on_cpu = Accel(cudnn_benchmark=True).resolved(torch.device("cpu"))
    assert on_cpu.deterministic is True and on_cpu.cudnn_benchmark is False
    # the reproducible policy is deterministic on CUDA too (the former "auto" meant off there)
    on_cuda = Accel().resolved(torch.device("cuda"))
    assert on_cuda.deterministic is True and on_cuda.cudnn_benchmark is False
    assert Accel(deterministic=False, cudnn_benchmark=True).resolved(torch.device("cuda")).cudnn_benchmark is True
    assert Accel(deterministic=True, cudnn_benchmark=True).resolved(torch.device("cuda")).cudnn_benchmark is False
    with pytest.raises(ValueError, match="amp"):
        Accel(amp="fp8")


def test_command_line_flags_round_trip_to_workers():
    parser = argparse.ArgumentParser()
    A.add_arguments(parser)
    accel = Accel(amp="bf16", channels_last=True, compile="inductor", sgd="fused", cudnn_benchmark=True,
                  deterministic=False)
    assert A.from_args(parser.parse_args(A.to_cli(accel))) == accel
    assert A.from_args(parser.parse_args([])) == Accel()


def test_cost_model_uses_the_measured_throughput(teacher, tmp_path, monkeypatch):
    tstore, tid = teacher
    store = Store(tmp_path / "store")
    assert throughput.measured_rate(store) is None  # nothing measured: the planner's calibrated defaults
    assert Planner("smoke").flops_per_s is None

    # a bench measurement: images/s x FLOPs of one KD step per image, kept under its device kind
    bench = {"device": "cpu", "teacher": "resnet56", "student": "resnet20", "accel": None,
             "cases": [{"name": "reference", "images_per_s": 10.0}, {"name": "engine", "images_per_s": 50.0}]}
    throughput.save_bench(store.root, bench)
    rate, source = throughput.measured_rate(store, "cpu")
    assert rate == 50.0 * (3 * cifar_resnet_flops(3, 100) + cifar_resnet_flops(9, 100))
    assert "bench" in source
    assert throughput.measured_rate(store) is None  # never mixed: a CPU bench says nothing about a GPU
    throughput.save_bench(store.root, {**bench, "device": "cuda:0"})
    assert throughput.measured_rate(store)[0] == pytest.approx(rate)  # both kinds kept side by side
    assert throughput.measured_rate(store, "cpu")[0] == pytest.approx(rate)
    store.throughput_file.unlink()

    # finished runs beat the bench: FLOPs of each run over its wall time, the median, per kind
    monkeypatch.setattr(throughput, "MIN_RUN_SECONDS", 0.0)
    store.mark_layout()  # a store of this code's layout, not one of runs copied in without a record
    shutil.copytree(tstore.run_dir(tid), store.run_dir(tid))
    res = store.result(tid)
    assert res["provenance"]["device"] == "cpu"
    rate, source = throughput.measured_rate(store, "cpu")
    # the teacher fixture: resnet14 (n = 2), CIFAR-10 stand-in of 240 train and 60 test images at 8 px,
    # one epoch (3 forwards' worth per train image, 1 per test image) and the final pass over the train set
    assert res["config"]["model"] == "resnet14" and res["config"]["recipe"]["epochs"] == 1
    assert res["config"]["data"]["synthetic"]["image_size"] == 8
    flops = (240 * 3 + 60 + 240) * cifar_resnet_flops(2, 10, side=8)
    assert rate == pytest.approx(flops / res["wall_time_s"], rel=1e-12)
    assert "finished run" in source
    assert throughput.measured_rate(store) is None  # the CPU smoke run leaves the GPU estimate alone

    # the planner's hours scale with it, and the plan JSON says where the rate comes from
    slow, fast = Planner("paper", rate=(1e12, "test")), Planner("paper", rate=(4e12, "test"))
    a, b = slow.plan("atkd-table5"), fast.plan("atkd-table5")
    ha, hb = table_summary(a, slow)["gpu_hours"], table_summary(b, fast)["gpu_hours"]
    assert ha == pytest.approx(4 * hb, rel=1e-3)
    assert "1 TFLOP/s (test)" in table_summary(a, slow)["cost_model"]


def test_without_a_measurement_the_plan_names_the_default_calibration():
    """Without a measurement: the H100 calibration of benchmark/catalog/calibrations.json (the rates model
    itself is tested in tests/test_costmodel.py); the plan names the source."""
    planner = Planner("paper")
    plan = planner.plan("atkd-table5")
    summary = table_summary(plan, planner)
    assert "calibration default" in summary["cost_model"] and summary["calibration"]["device_kind"] == "h100"
    assert summary["calibration"]["measured"] is None
