"""Numerics policies (benchmark/engine/numerics.py, benchmark/engine/accel.py): the switches each sets as torch
reads them back, what a result records, the command line, resume under another policy, the
deterministic forms of CUDA ops (benchmark/engine/detops.py), and two leaks fixed on the way: the
channels-last layout of normalised batches and bf16-rounded logits."""

import copy
import json
import re
import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from benchmark.engine import accel as A
from benchmark.engine import config as C
from benchmark.engine import detops, numerics
from benchmark.engine import methods as M
from benchmark.engine import train as T
from benchmark.engine.accel import Accel
from benchmark.engine.assembly import build_pipeline
from benchmark.engine.execution import ExecOptions
from benchmark.engine.train import train_run
from benchmark.store.layout import CHECKPOINT, Store
from tests.helpers import cli, stop_after_epoch, tiny

CPU = torch.device("cpu")
PACKAGE = Path(__file__).resolve().parent.parent / "benchmark"
ENGINE = PACKAGE / "engine"  # detops.INVENTORY names files under it


def small(epochs: int = 1, **changes):
    """A resnet8 run of 2 steps an epoch: seconds on the CPU."""
    cfg = tiny(recipe={"epochs": epochs, "steps_per_epoch": 2, "final_train_eval": False}, **changes)
    cfg["data"]["synthetic"].update(per_class=8, test_per_class=2)
    return cfg


@pytest.fixture
def restore_switches():
    """A test that sets another policy leaves the process as the default policy sets it."""
    yield
    A.configure(Accel().resolved(CPU))


# ---------------------------------------------------------------- the policies' switches


@pytest.mark.usefixtures("restore_switches")
def test_reproducible_and_strict_set_deterministic_kernels_read_back_from_torch():
    model = torch.nn.Conv2d(3, 4, 3)
    A.configure(Accel(numerics="strict").resolved(CPU))
    strict = A.read_back(CPU, Accel(numerics="strict").resolved(CPU), model)
    assert strict["deterministic_algorithms"] and not strict["deterministic_warn_only"]  # raises, never warns
    assert strict["cudnn_deterministic"] and not strict["cudnn_benchmark"]
    assert strict["fp32_precision"] == {"api": "fp32_precision", "cuda_matmul": "ieee", "cudnn_conv": "ieee"}
    assert (strict["autocast_dtype"], strict["memory_format"]) == (None, "contiguous")

    A.configure(Accel().resolved(CPU))
    default = A.read_back(CPU, Accel().resolved(CPU), model)
    assert default["numerics"] == "reproducible"
    assert default["deterministic_algorithms"] and not default["deterministic_warn_only"]
    assert default["cudnn_deterministic"] and not default["cudnn_benchmark"]
    # PyTorch's own defaults again (strict had changed them): full fp32 matmuls, TF32 allowed for cuDNN
    assert default["fp32_precision"] == {"api": "fp32_precision", "cuda_matmul": "none", "cudnn_conv": "tf32"}
    assert default["cublas_workspace_config"]["value"] is not None  # configure sets it when it is missing


@pytest.mark.usefixtures("restore_switches")
def test_fast_on_the_cpu_runs_what_it_can_and_says_what_it_could_not():
    fast = Accel(numerics="fast").resolved(CPU)
    assert dict(fast.not_applied) == {"cudnn_benchmark": "no cuDNN on cpu",
                                      "tf32": "no TF32 on cpu: its fp32 kernels are full precision"}
    assert fast.overrides() == {}  # what the CPU could not apply is no override of the policy
    model = A.prepare_model(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), fast)
    A.configure(fast)
    got = A.read_back(CPU, fast, model)
    assert not got["deterministic_algorithms"] and not got["cudnn_benchmark"]
    assert (got["autocast_dtype"], got["memory_format"]) == ("bfloat16", "channels_last")
    assert got["fp32_precision"]["cuda_matmul"] == "none"  # TF32 left at PyTorch's defaults
    # on CUDA the same policy keeps them (and deterministic kernels turn autotuning off instead)
    on_cuda = Accel(numerics="fast").resolved(torch.device("cuda"))
    assert (on_cuda.cudnn_benchmark, on_cuda.tf32, on_cuda.not_applied) == (True, "on", ())
    assert dict(Accel(cudnn_benchmark=True).resolved(torch.device("cuda")).not_applied) == {
        "cudnn_benchmark": "cuDNN autotuning picks kernels by timing: not under deterministic kernels"}


def test_flags_override_the_policy_and_round_trip_to_workers():
    assert Accel() == Accel(numerics="reproducible", amp="off", channels_last=False, deterministic=True, tf32="default")
    odd = Accel(numerics="fast", amp="off", deterministic=True)
    assert odd.overrides() == {"amp": "off", "deterministic": True}
    assert odd.label() == "fast, amp=off, deterministic=True" and Accel().label() == "reproducible"
    parser = __import__("argparse").ArgumentParser()
    A.add_arguments(parser)
    for accel in (Accel(), odd, Accel(numerics="strict", channels_last=True, sgd="fused", compile="aot_eager"),
                  Accel(numerics="fast", channels_last=False, cudnn_benchmark=False, tf32="off")):
        assert A.from_args(parser.parse_args(A.to_cli(accel))) == accel, A.to_cli(accel)
    assert A.from_args(parser.parse_args([])) == Accel()
    assert A.from_args(parser.parse_args(["--deterministic", "auto", "--numerics", "fast"])) == Accel(numerics="fast")
    with pytest.raises(ValueError, match="numerics"):
        Accel(numerics="turbo")


def test_the_cublas_workspace_is_set_once_and_a_users_value_is_kept(monkeypatch):
    monkeypatch.delenv(numerics.CUBLAS_VAR, raising=False)
    monkeypatch.delenv(numerics.CUBLAS_SET_BY_US, raising=False)
    numerics.prepare_environment(False)  # fast: nothing to set
    assert numerics.cublas_workspace() == {"value": None, "set_by": None}
    numerics.prepare_environment(True)
    assert numerics.cublas_workspace() == {"value": ":4096:8", "set_by": "kd-repro (before CUDA started)"}
    monkeypatch.setenv(numerics.CUBLAS_VAR, ":16:8")  # the user's own
    monkeypatch.delenv(numerics.CUBLAS_SET_BY_US)
    numerics.prepare_environment(True)
    assert numerics.cublas_workspace() == {"value": ":16:8", "set_by": "environment"}


def test_fp32_precision_reads_the_older_allow_tf32_switches():
    """torch before the fp32_precision API has only allow_tf32 (an older torch cannot be installed
    beside this one: these namespaces have that API's shape)."""
    old = types.SimpleNamespace(cuda=types.SimpleNamespace(matmul=types.SimpleNamespace(allow_tf32=False)),
                                cudnn=types.SimpleNamespace(allow_tf32=True))
    assert numerics.fp32_precision(old) == {"api": "allow_tf32", "cuda_matmul": "ieee", "cudnn_conv": "tf32"}
    assert numerics.fp32_precision()["api"] == "fp32_precision"  # this torch's


# ---------------------------------------------------------------- results and the command line


def _config_file(tmp_path, cfg) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.usefixtures("restore_switches")
def test_train_records_the_policy_and_every_flag_as_read_back(tmp_path):
    path = _config_file(tmp_path, small())
    for policy in ("reproducible", "fast"):
        store = tmp_path / policy
        done = cli("train", path, "--store", store, "--numerics", policy)
        assert done.returncode == 0, done.stderr
        result = json.loads(next(store.rglob("result.json")).read_text())
        ex = result["execution"]
        assert ex["numerics"] == policy and ex["read_back"]["numerics"] == policy
        for flag in A.FLAGS:
            assert flag in ex
        back = ex["read_back"]
        assert set(back) >= {"deterministic_algorithms", "deterministic_warn_only", "cudnn_deterministic",
                             "cudnn_benchmark", "fp32_precision", "autocast_dtype", "memory_format",
                             "cublas_workspace_config"}
        if policy == "reproducible":
            assert ex["not_applied"] == {} and back["deterministic_algorithms"] is True
            assert (back["autocast_dtype"], back["memory_format"]) == (None, "contiguous")
        else:  # the CPU applies bf16 and channels-last, not TF32 or cuDNN's autotuning: said so
            assert set(ex["not_applied"]) == {"tf32", "cudnn_benchmark"}
            assert (ex["amp"], ex["channels_last"], ex["deterministic"]) == ("bf16", True, False)
            assert (back["autocast_dtype"], back["memory_format"]) == ("bfloat16", "channels_last")
            assert back["deterministic_algorithms"] is False


def test_an_unknown_policy_is_one_line_and_writes_nothing(tmp_path):
    path = _config_file(tmp_path, small())
    out = cli("train", path, "--store", tmp_path / "store", "--numerics", "turbo")
    assert out.returncode == 2 and "--numerics" in out.stderr and "turbo" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert not (tmp_path / "store").exists()


def test_resuming_under_another_policy_is_refused(tmp_path):
    cfg = C.resolve(small(epochs=2))
    store = Store(tmp_path / "store")
    stop_after_epoch(cfg, store, 1)  # one epoch under the default policy, checkpointed
    run_dir = store.run_dir(C.run_id(cfg))
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert "numerics" in torch.load(run_dir / CHECKPOINT, weights_only=True)

    # the command line: exit 2, one line naming the checkpoint and both policies, nothing written
    out = cli("train", _config_file(tmp_path, cfg), "--store", store.root, "--numerics", "fast")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert re.search(r"checkpoint\.pt: numerics: .*reproducible.*fast", out.stderr)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before

    # a worker's path (train_runs): the run fails, with the reason
    result = train_run(cfg, store, ExecOptions(accel=Accel(numerics="fast")))
    assert result["status"] == "failed" and "--numerics reproducible" in result["reason"]
    assert result["execution"]["numerics"] == "fast"


def test_a_fused_group_never_mixes_policies(tmp_path):
    """A worker trains a group under its one policy: a member checkpointed under another fails alone
    (it would otherwise finish its epochs under a second policy); the others train under the worker's."""
    old, fresh = (C.resolve(small(epochs=2, loss={"name": "ls", "alpha": a})) for a in (0.1, 0.2))
    store = Store(tmp_path)
    stop_after_epoch(old, store, 1)
    results = T.train_runs([old, fresh], store, ExecOptions(accel=Accel(numerics="strict")))
    assert results[C.run_id(old)]["status"] == "failed" and "reproducible" in results[C.run_id(old)]["reason"]
    done = results[C.run_id(fresh)]
    assert done["status"] == "done" and done["execution"]["read_back"]["numerics"] == "strict"
    assert done["execution"]["read_back"]["fp32_precision"]["cuda_matmul"] == "ieee"
    A.configure(Accel().resolved(CPU))


# ---------------------------------------------------------------- the two leaks


def test_normalized_batches_are_contiguous_unless_channels_last_is_asked_for():
    cfg = C.resolve(small())
    data = build_pipeline(cfg, ExecOptions())
    x, _ = next(iter(data.train_batches(0, 0)))
    test_x, _ = next(iter(data.test_batches()))
    for t in (x, test_x, data.probe_batch()):
        assert t.is_contiguous() and not t.is_contiguous(memory_format=torch.channels_last)
    nhwc = A.prepare_input(x, Accel(channels_last=True))
    assert nhwc.is_contiguous(memory_format=torch.channels_last) and torch.equal(nhwc, x)


def _bf16_rounded(t: torch.Tensor) -> bool:
    return torch.equal(t, t.bfloat16().float())


@pytest.mark.usefixtures("restore_switches")
def test_under_bf16_the_loss_sees_fp32_logits_of_both_networks(tmp_path, monkeypatch):
    store = Store(tmp_path)
    teacher = train_run(C.resolve(small()), store, ExecOptions())
    seen = []
    real = M.Step

    def spying_step(*args, **kwargs):  # the real step context, the logits the method sees kept
        step = real(*args, **kwargs)
        seen.append((step.student_logits.detach().clone(), step.teacher_logits.detach().clone()))
        return step
    monkeypatch.setattr(M, "Step", spying_step)
    student = small(teacher={"run": teacher["id"]}, loss={"name": "kd", "tau": 4.0}, seed=1)
    result = train_run(C.resolve(student), store, ExecOptions(accel=Accel(amp="bf16")))
    assert result["status"] == "done" and len(seen) == 2
    for z_s, z_t in seen:
        assert z_s.dtype == z_t.dtype == torch.float32
        assert not _bf16_rounded(z_s) and not _bf16_rounded(z_t)

    # the control: a network whose head runs under autocast returns logits rounded to bf16
    from benchmark.engine.models import build_model

    plain = build_model("resnet8", 10).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad(), A.autocast(CPU, Accel(amp="bf16")):
        rounded = plain(x)
    assert rounded.dtype == torch.bfloat16
    reference = copy.deepcopy(plain)
    A.prepare_model(plain, Accel(amp="bf16"))
    with torch.no_grad():
        with A.autocast(CPU, Accel(amp="bf16")):
            z, feat = plain(x), plain.extract(x)["penultimate"]
        # the head's fp32 matmul of the bf16 features; without autocast, the model is unchanged
        assert torch.equal(z, F.linear(feat.float(), plain.fc.weight, plain.fc.bias))
        assert torch.equal(plain(x), reference(x))


# ---------------------------------------------------------------- deterministic forms


def test_every_adaptive_pool_of_the_package_is_in_the_inventory():
    """Each use goes through detops at the line the inventory names, except global 1x1 pools of
    torch's op (a mean: deterministic); and the torchvision AlexNet's 6x6 pool is replaced."""
    uses = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "detops.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"adaptive_avg_pool2d\(|AdaptiveAvgPool2d\(", line) and "import" not in line:
                if re.search(r"(functional|F)\.adaptive_avg_pool2d\(\w+, 1\)", line):
                    continue
                assert not re.search(r"(functional|F|nn)\.(adaptive_avg_pool2d|AdaptiveAvgPool2d)\(", line), \
                    f"{path}:{n} calls torch's op directly"
                uses.add((str(path.relative_to(ENGINE if path.is_relative_to(ENGINE) else PACKAGE)), n))
    assert uses == {(f, n) for f, n, _ in detops.INVENTORY}

    from benchmark.engine.models import build_model

    alexnet = build_model("alexnet", 10)
    assert isinstance(alexnet.avgpool, detops.AdaptiveAvgPool2d) and alexnet.avgpool.output_size == (6, 6)
    assert isinstance(build_model("alexnet_small", 10).avgpool, detops.AdaptiveAvgPool2d)
    import torchvision

    assert alexnet.state_dict().keys() == torchvision.models.alexnet(num_classes=10).state_dict().keys()
