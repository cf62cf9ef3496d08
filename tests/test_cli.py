"""Bad input: exit 2, one line naming file and field, no traceback, nothing written."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.helpers import REPO, cli, runner, tiny


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
    assert_clean_error(cli("train", cfg, "--store", store), str(cfg), *needles)
    assert not store.exists()


def test_missing_config_file(tmp_path):
    assert_clean_error(cli("train", tmp_path / "nope.yaml", "--store", tmp_path / "s"), "nope.yaml", "no such file")


def test_missing_dataset_files_say_where_to_put_them(tmp_path):
    raw = tiny()
    raw["data"] = {"source": "real", "root": str(tmp_path / "data")}
    cfg = tmp_path / "real.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    proc = cli("train", cfg, "--store", tmp_path / "store")
    assert_clean_error(proc, str(tmp_path / "data"))


def test_unknown_command_and_option():
    assert_clean_error(runner("frobnicate"))  # the real process: one line on stderr, exit 2
    assert_clean_error(cli("models", "--num-classes", "many"))


def test_parsing_and_help_import_no_torch():
    """Argument errors and --help answer before torch is imported (it takes seconds)."""
    code = ("import sys; from benchmark.cli import main, build_parser\n"
            "assert main(['list', '--bogus']) == 2\n"
            "args = build_parser().parse_args(['reproduce', 'ats-table2'])\n"
            "assert args.device == 'auto', args.device\n"
            "print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
    helped = runner("reproduce", "--help")
    assert helped.returncode == 0
    text = " ".join(helped.stdout.split())
    for needle in ("--profile", "(default: paper)", "--store", "(default: runs)", "--device", "(default: auto)"):
        assert needle in text


def test_output_cut_by_a_closed_pipe_ends_quietly():
    """`plan --json | head`: the reader has left; no BrokenPipeError traceback, exit 141. The pipe's
    read end is closed before the command starts, so its first write fails for certain."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, str(REPO / "runner.py"), "data", "list", "--json"], cwd=REPO,
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_models_json_contract():
    proc = cli("models", "--num-classes", "100", "--json")
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


def test_horizontal_sizes_are_a_list_of_positive_integers():
    import argparse

    from benchmark import cli as module

    assert module._sizes("1,4,8,16") == (1, 4, 8, 16) and module._sizes("3") == (3,)
    for bad in ("", "0,2", "-1", "a", "1,,2", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="not a list of positive integers"):
            module._sizes(bad)
