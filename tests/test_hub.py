"""Torchvision's published weights as teachers (benchmark/engine/hub.py): the zoo names what the installed
torchvision records, files are found in torch.hub's cache and checked by their digest prefix, and a
missing file is one line saying where to put it. No network: files are made by the tests."""

import hashlib
import re
import shutil

import pytest
import torch

from benchmark.catalog.manifest import cached_catalog
from benchmark.catalog.plan import Planner
from benchmark.engine import config as C
from benchmark.engine.hub import ensure_files, torchvision_meta
from benchmark.engine.models import build_model
from benchmark.engine.train import RunFailed, load_teacher
from benchmark.errors import BadInput
from benchmark.store.layout import Store
from tests.helpers import cli

TORCHVISION_ENTRIES = [(dataset, key, entry) for dataset, entries in cached_catalog().zoo.items()
                       for key, entry in entries.items() if entry.get("torchvision")]


def test_the_imagenet_teachers_are_torchvisions_weights_as_torchvision_records_them():
    keys = {key for _, key, _ in TORCHVISION_ENTRIES}
    assert {"resnet34@atkd-imagenet", "resnet50@atkd-imagenet", "resnet101@atkd-imagenet", "resnet152@atkd-imagenet",
            "resnet152@klmse", "resnet50@lskd-alpha0.0"} <= keys
    for _, key, entry in TORCHVISION_ENTRIES:
        tv = entry["torchvision"]
        meta = torchvision_meta(tv["weights"])
        assert (tv["file"], tv["sha256"]) == (meta["file"], meta["sha256"]), key
        assert tv["weights"].split("_Weights.")[0].lower() == entry["model"], key
    # LS-KD's alpha = 0.0 teacher cell is exactly these weights' model card
    meta = torchvision_meta("ResNet50_Weights.IMAGENET1K_V1")
    assert (meta["top1"], meta["top5"]) == (76.13, 92.862)


def test_torchvision_teachers_are_files_in_paper_runs_stand_ins_in_smoke_and_retraining_is_one_key_away():
    planner = Planner("paper")
    plan = planner.plan("atkd-table4")
    students = [planner.jobs[j].config for j in plan.job_ids]
    assert all(planner.jobs[j].role == "student" for j in plan.job_ids)
    assert {c["teacher"]["torchvision"] for c in students if c["teacher"]} == {"ResNet34_Weights.IMAGENET1K_V1"}
    smoke = Planner("smoke")
    assert any(smoke.jobs[j].role == "teacher" for j in smoke.plan("atkd-table4").job_ids)
    ref, tid = planner.teacher_ref({"dataset": "imagenet", "teacher": "resnet34@atkd-imagenet-retrained"},
                                   {"dataset": "imagenet", "recipe": "atkd-imagenet"}, "test", "teacher")
    assert tid is not None and ref == {"run": tid} and planner.jobs[tid].config["model"] == "resnet34"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A TORCH_HOME whose hub cache holds a resnet18 state dict under its own digest-prefixed name."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.manual_seed(0)
    state = build_model("resnet18", 1000).state_dict()
    made = checkpoints / "made.pth"
    torch.save(state, made)
    digest = hashlib.sha256(made.read_bytes()).hexdigest()
    own = checkpoints / f"resnet18-{digest[:8]}.pth"
    made.rename(own)
    return checkpoints, own, digest, state


def _teacher(file, prefix):
    return C.resolve({"dataset": "imagenet", "model": "resnet18", "loss": {"name": "kd"},
                      "teacher": {"torchvision": "ResNet18_Weights.IMAGENET1K_V1", "file": file, "sha256": prefix,
                                  "model": "resnet18"}})


def test_a_torchvision_teacher_loads_from_the_hub_cache_when_its_digest_starts_with_the_prefix(hub, tmp_path):
    checkpoints, own, digest, state = hub
    cfg = _teacher(own.name, digest[:8])
    assert cfg["teacher"] == {"torchvision": "ResNet18_Weights.IMAGENET1K_V1", "file": own.name,
                              "sha256": digest[:8], "model": "resnet18"}
    assert ensure_files([cfg["teacher"]], download=False) == [own]
    model = load_teacher(cfg, Store(tmp_path / "store"), "cpu")
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name]), name


def test_a_file_whose_digest_does_not_start_with_torchvisions_prefix_is_refused(hub, tmp_path):
    checkpoints, own, _, _ = hub
    meta = torchvision_meta("ResNet18_Weights.IMAGENET1K_V1")
    shutil.copy(own, checkpoints / meta["file"])  # the made file under torchvision's own name
    cfg = _teacher(meta["file"], meta["sha256"])
    with pytest.raises(RunFailed, match=f"does not start with {meta['sha256']}"):
        load_teacher(cfg, Store(tmp_path / "store"), "cpu")
    with pytest.raises(BadInput, match=f"does not start with {meta['sha256']}"):
        ensure_files([cfg["teacher"]], download=False)


def test_a_missing_file_says_in_one_line_which_file_to_place_where(hub, tmp_path):
    checkpoints, _, _, _ = hub
    teacher = {"torchvision": "ResNet34_Weights.IMAGENET1K_V1", "file": "resnet34-b627a593.pth",
               "sha256": "b627a593", "model": "resnet34"}
    with pytest.raises(BadInput) as err:
        ensure_files([teacher], download=False)
    message = err.value.message()
    assert "\n" not in message and "place resnet34-b627a593.pth" in message and f"in {checkpoints}/" in message
    assert "https://download.pytorch.org/models/resnet34-b627a593.pth" in message
    with pytest.raises(RunFailed, match="torchvision weights not found"):
        load_teacher(_teacher("resnet34-b627a593.pth", "b627a593"),
                     Store(tmp_path / "store"), "cpu")


def test_reproduce_without_the_file_offline_exits_2_in_one_line_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("KD_REPRO_OFFLINE", "1")
    monkeypatch.delenv("KD_REPRO_CATALOG", raising=False)
    store = tmp_path / "store"
    proc = cli("reproduce", "atkd-table4", "--store", store, "--device", "cpu", "--quiet")  # main(), in this process
    assert proc.returncode == 2, proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert re.search(r"place resnet34-b627a593\.pth .* in .*/torch/hub/checkpoints/", lines[0])
    assert not store.exists()


@pytest.mark.parametrize("tv, field", [
    ({"weights": "ResNet50_Weights.IMAGENET1K_V1", "file": "resnet50-0676ba61.pth", "sha256": "0676ba62"},
     "teachers.t.torchvision.sha256"),
    ({"weights": "ResNet50_Weights.IMAGENET1K_V1", "file": "../resnet50-0676ba61.pth", "sha256": "0676ba61"},
     "teachers.t.torchvision.file"),
    ({"weights": "ResNet50_Weights.IMAGENET1K_V1", "file": "resnet50-0676ba61.pth"}, "teachers.t.torchvision"),
])
def test_bad_torchvision_zoo_entries_name_the_field(tmp_path, tv, field):
    import yaml

    from benchmark.catalog.manifest import load_catalog

    (tmp_path / "manifests" / "recipes").mkdir(parents=True)
    (tmp_path / "teachers").mkdir()
    (tmp_path / "teachers" / "z.yaml").write_text(yaml.safe_dump(
        {"dataset": "imagenet", "teachers": {"t": {"model": "resnet50", "torchvision": tv}}}))
    with pytest.raises(BadInput) as err:
        load_catalog(tmp_path)
    assert err.value.field == field
