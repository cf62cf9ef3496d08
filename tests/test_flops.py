"""The committed FLOP table (benchmark/catalog/flops.json): of the current model code, an entry for every
zoo model, the counts torch gives; with it, `list` and `plan` import no torch on a cold cache."""

import json
import os
import subprocess
import sys

import pytest

from benchmark import diskcache
from benchmark.catalog import flops
from benchmark.engine import models
from tests.helpers import REPO

DOC = json.loads(flops.TABLE.read_text())


def test_the_table_is_of_the_current_model_code():
    # fails after a change to benchmark/engine/models/*.py: remake the table with scripts/flops-table
    assert DOC["models"] == flops.models_digest()
    assert flops.table()["flops"] == DOC["flops"] and flops.table()["layers"] == DOC["layers"]


def test_every_zoo_model_has_an_entry():
    for name in models.model_names():
        classes, side = (100, 32) if models.model_info(name)["family"] == "cifar" else (1000, 224)
        assert DOC["flops"][f"{name}|{classes}|{side}"] > 0, name
        assert DOC["layers"][f"{name}|{classes}"] > 0, name


@pytest.mark.parametrize("key", ["resnet8|100|32", "wrn_40_2|100|32", "vgg8|100|32", "shufflev1|100|32",
                                 "resnet18|1000|224"])
def test_entries_are_what_torch_counts(key):
    model, classes, side = key.split("|")
    assert flops.count_forward_flops(model, int(classes), int(side)) == DOC["flops"][key]
    assert flops.count_layers(model, int(classes)) == DOC["layers"][f"{model}|{classes}"]


def test_the_table_answers_before_any_cache_is_read_or_counted(tmp_path, monkeypatch):
    monkeypatch.setenv("KD_REPRO_CACHE", str(tmp_path / "cache"))
    flops.forward_flops.cache_clear()
    flops.layer_count.cache_clear()
    try:
        assert flops.forward_flops("resnet56", 100, 32) == DOC["flops"]["resnet56|100|32"]
        assert flops.layer_count("resnet56", 100) == DOC["layers"]["resnet56|100"]
        assert diskcache.read("flops", flops.stamp()) == {} and diskcache.read("layers", flops.stamp()) == {}
    finally:
        flops.forward_flops.cache_clear()
        flops.layer_count.cache_clear()


def _imports_torch(tmp_path, *args, catalog=None) -> bool:
    env = {**os.environ, "KD_REPRO_CACHE": str(tmp_path / "cold")}  # a cold cache: nothing counted before
    if catalog:
        env["KD_REPRO_CATALOG"] = str(catalog)
    proc = subprocess.run([sys.executable, "-X", "importtime", "runner.py", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return any(line.rsplit("|", 1)[-1].strip() == "torch" for line in proc.stderr.splitlines())


def test_plan_and_list_import_no_torch_on_a_cold_cache(tmp_path):
    assert not _imports_torch(tmp_path, "plan", "ats-table2")
    # list plans every table of the catalogue (the tests' small one here, for time)
    assert not _imports_torch(tmp_path, "list", catalog=REPO / "tests" / "catalog")
    # the check can fail: a command that trains imports torch
    assert _imports_torch(tmp_path, "models")
