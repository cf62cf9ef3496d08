"""Bad input: exit 2, one line naming file and field, no traceback, nothing written."""

import json

import pytest
import yaml

from tests.helpers import runner, tiny


def assert_clean_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize("content, needles", [
    ("", ["the file is empty"]),
    ("model: [resnet8\n", ["YAML syntax error", "line"]),
    (yaml.safe_dump(tiny(model="resnet9000")), ["model", "unknown model"]),
    (yaml.safe_dump(tiny(loss={"name": "kd", "tau": "warm"})), ["loss", "tau"]),
    (yaml.safe_dump(tiny(recipe={"epochs": -3})), ["recipe.epochs"]),
    ("- just\n- a list\n", ["mapping"]),
])
def test_bad_config_exits_2_and_writes_nothing(tmp_path, content, needles):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(content)
    store = tmp_path / "store"
    assert_clean_error(runner("train", cfg, "--store", store), str(cfg), *needles)
    assert not store.exists()


def test_missing_config_file(tmp_path):
    assert_clean_error(runner("train", tmp_path / "nope.yaml", "--store", tmp_path / "s"), "nope.yaml", "no such file")


def test_missing_dataset_files_say_where_to_put_them(tmp_path):
    raw = tiny()
    raw["data"] = {"source": "real", "root": str(tmp_path / "data")}
    cfg = tmp_path / "real.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    proc = runner("train", cfg, "--store", tmp_path / "store")
    assert_clean_error(proc, str(tmp_path / "data"))


def test_unknown_command_and_option():
    assert_clean_error(runner("frobnicate"))
    assert_clean_error(runner("models", "--num-classes", "many"))


def test_models_json_contract():
    proc = runner("models", "--num-classes", "100", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    by_name = {r["name"]: r for r in rows}
    for row in rows:
        assert {"name", "params", "num_classes"} <= set(row) and row["num_classes"] == 100
    assert abs(by_name["resnet56"]["params"] - 0.862e6) / 0.862e6 < 0.01
    assert abs(by_name["wrn_40_2"]["params"] - 2.255e6) / 2.255e6 < 0.01
    for name in ("resnet8", "resnet110", "resnet32x4", "vgg13", "shufflev1", "mobilenetv2", "resnext29_64x4d",
                 "resnet18", "resnext101_32x8d", "alexnet_small", "convnext_tiny"):
        assert name in by_name
